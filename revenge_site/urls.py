from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from kitsu_sync.api import api
from kitsu_sync.metrics import metrics_view
from revenge_site.accounts import accept_invite

urlpatterns = [
    path("admin/", admin.site.urls),
    # An invitation link opens sign-up for its browser session (revenge_site.accounts).
    path("accounts/invite/<str:token>/", accept_invite, name="account_invite"),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", api.urls),
    path("metrics", metrics_view, name="metrics"),  # Prometheus; off unless METRICS_ENABLED
    path("", include("kitsu_sync.urls")),
]
