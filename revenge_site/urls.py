from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from kitsu_sync.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", api.urls),
    path("", include("kitsu_sync.urls")),
]
