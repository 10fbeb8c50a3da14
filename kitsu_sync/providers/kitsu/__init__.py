"""The Kitsu provider for django-allauth: OAuth2 authorization-code flow against Kitsu."""
