"""App configuration of the project itself (kept free of model imports: Django loads it first)."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class RevengeAdminConfig(AdminConfig):
    """Django's admin, with the site whose sign-in is allauth's (revenge_site.accounts)."""

    default_site = "revenge_site.accounts.RevengeAdminSite"
