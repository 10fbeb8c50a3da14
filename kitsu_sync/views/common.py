"""What the views share."""

from __future__ import annotations

from django.http import HttpRequest

from kitsu_sync.models import KitsuToken


def link_of(request: HttpRequest) -> KitsuToken | None:
    # Pages never need the tokens themselves: leave them encrypted in the database.
    return (
        KitsuToken.objects.defer("access_token", "refresh_token").filter(user=request.user).first()
    )


def rating_system_of(request: HttpRequest) -> str:
    """How the user rates on Kitsu ("" when unknown: every value Kitsu stores is offered)."""
    return (
        KitsuToken.objects.filter(user=request.user)
        .values_list("kitsu_rating_system", flat=True)
        .first()
        or ""
    )
