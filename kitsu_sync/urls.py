from __future__ import annotations

from django.urls import path

from kitsu_sync import views

app_name = "kitsu_sync"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
