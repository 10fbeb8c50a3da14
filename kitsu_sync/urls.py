from __future__ import annotations

from django.urls import path

from kitsu_sync import views

app_name = "kitsu_sync"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("kitsu/link/", views.link_password, name="link_password"),
    path("kitsu/sync/", views.sync_now, name="sync_now"),
    path("kitsu/unlink/", views.unlink, name="unlink"),
    path("kitsu/syncs/<int:pk>/", views.sync_run, name="sync_run"),
    path("library/", views.library, name="library"),
    path("library/<int:kitsu_anime_id>/resend/", views.entry_resend, name="entry_resend"),
    path("keys/", views.api_key_create, name="api_key_create"),
    path("keys/<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("media-servers/", views.media_server_add, name="media_server_add"),
    path("media-servers/<int:pk>/delete/", views.media_server_delete, name="media_server_delete"),
    path("unmatched/<int:pk>/match/", views.unmatched_match, name="unmatched_match"),
    path("unmatched/<int:pk>/ignore/", views.unmatched_ignore, name="unmatched_ignore"),
    path("overrides/<int:pk>/delete/", views.override_delete, name="override_delete"),
    path("health/", views.health, name="health"),
]
