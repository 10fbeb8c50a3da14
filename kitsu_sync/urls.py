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
    path("health/", views.health, name="health"),
]
