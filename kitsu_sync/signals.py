"""Signals the services send when work must be queued; `receivers` turns them into Celery
tasks. Services never import tasks (tasks call services), so this is how they ask for one."""

from __future__ import annotations

from django.dispatch import Signal

# A sync of this user's library should run: user_id, trigger, full. Sent after the
# transaction that asked for it commits; a receiver's error (the broker down) propagates.
sync_requested = Signal()

# Changes of this user wait in the outbox for Kitsu: user_id. Sent after the commit that
# queued them; a receiver's error (the broker down) is logged, and beat delivers them later.
outbox_ready = Signal()

# A link stopped working and needs the user to link Kitsu again: user_id, reason (the words
# shown to them). Sent by tokens.mark_needs_relink, after its update.
link_needs_relink = Signal()

# A library sync ended (not a dry run, not skipped at the start): user_id, run_id, outcome.
sync_finished = Signal()
