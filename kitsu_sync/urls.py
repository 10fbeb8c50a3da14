from __future__ import annotations

from django.urls import path

from kitsu_sync.views import account, anime, dashboard, library, scrobbling

app_name = "kitsu_sync"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("kitsu/link/", account.link_password, name="link_password"),
    path("kitsu/sync/", account.sync_now, name="sync_now"),
    path("kitsu/unlink/", account.unlink, name="unlink"),
    path("kitsu/syncs/<int:pk>/", account.sync_run, name="sync_run"),
    path("library/", library.library, name="library"),
    path("library/add/", library.entry_add, name="entry_add"),
    path("library/<int:kitsu_anime_id>/edit/", library.entry_edit, name="entry_edit"),
    path("library/<int:kitsu_anime_id>/plus-one/", library.entry_plus_one, name="entry_plus_one"),
    path("library/<int:kitsu_anime_id>/remove/", library.entry_remove, name="entry_remove"),
    path("library/<int:kitsu_anime_id>/resend/", library.entry_resend, name="entry_resend"),
    path("anime/search/", anime.search, name="search"),
    path("anime/trending/", anime.trending, name="trending"),
    path("anime/season/", anime.season, name="season"),
    path("anime/<int:kitsu_anime_id>/", anime.anime_page, name="anime"),
    path("keys/", scrobbling.api_key_create, name="api_key_create"),
    path("keys/<int:pk>/revoke/", scrobbling.api_key_revoke, name="api_key_revoke"),
    path("media-servers/", scrobbling.media_server_add, name="media_server_add"),
    path(
        "media-servers/<int:pk>/delete/",
        scrobbling.media_server_delete,
        name="media_server_delete",
    ),
    path("unmatched/<int:pk>/match/", scrobbling.unmatched_match, name="unmatched_match"),
    path("unmatched/<int:pk>/ignore/", scrobbling.unmatched_ignore, name="unmatched_ignore"),
    path("overrides/<int:pk>/delete/", scrobbling.override_delete, name="override_delete"),
    path("health/", account.health, name="health"),
]
