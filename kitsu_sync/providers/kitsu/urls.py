from __future__ import annotations

from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns

from kitsu_sync.providers.kitsu.provider import KitsuProvider

urlpatterns = default_urlpatterns(KitsuProvider)
