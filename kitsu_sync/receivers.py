"""Signal receivers, connected in KitsuSyncConfig.ready(): allauth's signals -> the linking
service, and the services' requests for queued work -> Celery tasks."""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.signals import user_signed_up
from allauth.socialaccount.models import SocialAccount, SocialLogin
from allauth.socialaccount.providers.base import AuthProcess
from allauth.socialaccount.signals import (
    social_account_added,
    social_account_removed,
    social_account_updated,
)
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest

from kitsu_sync import metrics, tasks
from kitsu_sync.models import KITSU_PROVIDER_ID, KitsuToken, MediaServer, NoticeKind
from kitsu_sync.services import notifications
from kitsu_sync.services.linking import record_link
from kitsu_sync.services.media_servers import forget_show_ids
from kitsu_sync.services.tokens import (
    RELINK_NOT_RENEWABLE,
    RELINK_REFRESH_REJECTED,
    RELINK_UNREADABLE,
)
from kitsu_sync.signals import link_needs_relink, outbox_ready, sync_finished, sync_requested

logger = logging.getLogger(__name__)


def _is_kitsu(sociallogin: SocialLogin | None) -> bool:
    return sociallogin is not None and sociallogin.account.provider == KITSU_PROVIDER_ID


@receiver(social_account_added, dispatch_uid="kitsu_link_on_connect")
def store_link_on_connect(
    sender: Any, request: HttpRequest | None, sociallogin: SocialLogin, **kwargs: Any
) -> None:
    if _is_kitsu(sociallogin):
        record_link(sociallogin=sociallogin)


@receiver(social_account_updated, dispatch_uid="kitsu_link_on_login")
def store_link_on_login(
    sender: Any, request: HttpRequest | None, sociallogin: SocialLogin, **kwargs: Any
) -> None:
    if not _is_kitsu(sociallogin):
        return
    # allauth sends this from its account lookup, before it refuses to connect a Kitsu
    # account that belongs to someone else: leave that other user's link alone.
    current = getattr(request, "user", None)
    if (
        (sociallogin.state or {}).get("process") == AuthProcess.CONNECT
        and current is not None
        and current.is_authenticated
        and current.pk != sociallogin.account.user_id
    ):
        return
    record_link(sociallogin=sociallogin)


@receiver(user_signed_up, dispatch_uid="kitsu_link_on_signup")
def store_link_on_signup(
    sender: Any,
    request: HttpRequest | None,
    user: AbstractBaseUser,
    sociallogin: SocialLogin | None = None,
    **kwargs: Any,
) -> None:
    if _is_kitsu(sociallogin):
        assert sociallogin is not None
        record_link(sociallogin=sociallogin, user=user)


@receiver(social_account_removed, dispatch_uid="kitsu_tokens_on_disconnect")
def forget_tokens_on_disconnect(
    sender: Any, request: HttpRequest | None, socialaccount: SocialAccount, **kwargs: Any
) -> None:
    # Disconnected from allauth's connections page: the tokens of that Kitsu account go too.
    if socialaccount.provider == KITSU_PROVIDER_ID:
        KitsuToken.objects.filter(
            user_id=socialaccount.user_id, kitsu_user_id=socialaccount.uid
        ).delete()


@receiver(sync_requested, dispatch_uid="kitsu_queue_sync")
def queue_sync(sender: Any, *, user_id: int, trigger: str, full: bool, **kwargs: Any) -> None:
    tasks.sync_library.delay(user_id, trigger, full)


# A user's changes arriving together are delivered together: the first queues a delivery that
# runs this many seconds later (after the mark expires), and those that come meanwhile ride
# along with it instead of queuing a task each.
DELIVERY_GATHER_SECONDS = 1


@receiver(outbox_ready, dispatch_uid="kitsu_deliver_outbox")
def deliver_outbox(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    mark = f"kitsu-delivery-queued:{user_id}"
    try:
        if not cache.add(mark, 1, timeout=DELIVERY_GATHER_SECONDS):
            return  # a delivery already queued runs after this change was committed
        tasks.deliver_outbox.apply_async((user_id,), countdown=DELIVERY_GATHER_SECONDS)
    except Exception:
        # Redis (the broker, the cache) is down: the changes wait in the outbox, and beat
        # delivers them once it is back. The change the person made is saved either way.
        logger.warning("Could not queue the delivery of user %s's changes", user_id, exc_info=True)


@receiver([post_save, post_delete], sender=MediaServer, dispatch_uid="kitsu_forget_show_ids")
def forget_show_ids_of_servers(sender: Any, **kwargs: Any) -> None:
    # A server added, changed or removed may know a show by other ids (or not at all).
    forget_show_ids()


# --- notices: conditions starting and ending -> the notifications service, sending -> a task ---

RELINK_REASONS = {
    RELINK_REFRESH_REJECTED: "refresh_rejected",
    RELINK_NOT_RENEWABLE: "not_renewable",
    RELINK_UNREADABLE: "unreadable",
}


def queue_notice(notice_id: int) -> None:
    """Send the notice from a worker once the transaction that opened it commits."""

    def send() -> None:
        try:
            tasks.send_notice.delay(notice_id)
        except Exception:
            # The broker is down: the notice shows on the dashboard, and beat's
            # notify_conditions sends it once the broker is back.
            logger.warning("Could not queue the sending of notice %s", notice_id, exc_info=True)

    transaction.on_commit(send)


@receiver(link_needs_relink, dispatch_uid="kitsu_notify_relink")
def notify_relink(sender: Any, *, user_id: int, reason: str, **kwargs: Any) -> None:
    notice = notifications.link_needs_relink(user_id=user_id, reason=reason)
    if notice is not None:
        metrics.RELINK_EVENTS.labels(RELINK_REASONS.get(reason, "other")).inc()
        queue_notice(notice.pk)


@receiver(sync_finished, dispatch_uid="kitsu_notify_sync_failures")
def notify_sync_failures(sender: Any, *, user_id: int, outcome: str, **kwargs: Any) -> None:
    notice = notifications.sync_finished(user_id=user_id, outcome=outcome)
    if notice is not None:
        queue_notice(notice.pk)


@receiver(post_save, sender=KitsuToken, dispatch_uid="kitsu_close_relink_notice")
def close_relink_notice(sender: Any, instance: KitsuToken, **kwargs: Any) -> None:
    # Linked again (store_link saves the row with needs_relink off): the condition is over.
    if not instance.needs_relink:
        notifications.close_notices(user_id=instance.user_id, kind=NoticeKind.RELINK)


@receiver(post_delete, sender=KitsuToken, dispatch_uid="kitsu_close_link_notices")
def close_link_notices(sender: Any, instance: KitsuToken, **kwargs: Any) -> None:
    # Unlinked: neither re-linking nor failing syncs concern this user any more.
    for kind in (NoticeKind.RELINK, NoticeKind.SYNC_FAILING):
        notifications.close_notices(user_id=instance.user_id, kind=kind)
