"""django-allauth providers of this project, each its own installed app (allauth's layout)."""
