"""Two database techniques the services share: compare-and-swap claims, and bulk upserts.

A **claim** makes one process at a time the holder of a job on a row (one sync per user, one
token refresh per user) without a lock or a transaction held open: a conditional UPDATE of a
timestamp column, as healthchecks claims jobs. It works the same on SQLite and PostgreSQL and
lapses on its own when its holder dies.

**`bulk_write`** is `bulk_create` (optionally an upsert) that on PostgreSQL sends the rows as one
JSON document, for a fraction of the ORM's CPU per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from kitsu_sync.records import json_value


class ClaimLost(Exception):
    """The claim lapsed and another process took it over: stop without writing more."""


@dataclass
class Claim:
    """A claim held on one row: `until` is both its expiry and the proof that it is ours."""

    row: QuerySet[Any]  # the one row the claim is on
    column: str
    ttl: timedelta
    until: datetime | None

    @classmethod
    def take(
        cls, row: QuerySet[Any], column: str, *, ttl: timedelta, **fields: Any
    ) -> Claim | None:
        """Take the claim when nobody holds it (or its holder's lapsed), writing `fields` with
        it; None when someone else holds it."""
        now = timezone.now()
        until = now + ttl
        free = Q(**{f"{column}__isnull": True}) | Q(**{f"{column}__lte": now})
        taken = row.filter(free).update(**{column: until}, **fields)
        return cls(row, column, ttl, until) if taken else None

    def renew(self, **fields: Any) -> None:
        """Extend the claim (writing `fields` with it); ClaimLost when it is no longer ours."""
        if self.until is None:
            raise ClaimLost("This claim was already given back.")
        # Strictly later than before: the new expiry must differ from the old proof.
        until = max(timezone.now() + self.ttl, self.until + timedelta(microseconds=1))
        renewed = self.row.filter(**{self.column: self.until}).update(
            **{self.column: until}, **fields
        )
        if not renewed:
            self.until = None
            raise ClaimLost("The claim lapsed and another process took it over.")
        self.until = until

    def release(self, **fields: Any) -> bool:
        """Give the claim back, writing `fields` with it; False when it was no longer ours."""
        if self.until is None:
            return False
        released = self.row.filter(**{self.column: self.until}).update(
            **{self.column: None}, **fields
        )
        self.until = None
        return bool(released)

    def seconds_left(self) -> float:
        if self.until is None:
            return 0.0
        return max((self.until - timezone.now()).total_seconds(), 0.0)


def bulk_write(
    model: type[Model],
    objs: list[Model],
    *,
    unique_field: str | None = None,
    update_fields: Sequence[str] = (),
) -> None:
    """`bulk_create(objs)`; with `unique_field`, an upsert that writes only `update_fields`.

    `objs` are all new (no primary key) or all stored. On PostgreSQL the rows go as one JSON
    document read by `jsonb_to_recordset`: bulk_create's value-by-value preparation and
    psycopg's quoting of the arrays it binds cost two and a half times the CPU (29 ms against
    11 for 500 entries). Other backends (SQLite, the embedded mode) use bulk_create itself.
    """
    if not objs:
        return
    with_pk = objs[0].pk is not None
    if any((obj.pk is not None) != with_pk for obj in objs):
        raise ValueError("bulk_write takes new rows or stored rows, not both at once.")
    if unique_field is not None and not update_fields:
        raise ValueError("An upsert needs the fields it updates.")
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            objs,
            update_conflicts=unique_field is not None,
            unique_fields=None if unique_field is None else [unique_field],
            update_fields=list(update_fields) or None,
        )
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if with_pk or not f.primary_key]
    stamped = [
        f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    rows = []
    for obj in objs:
        for f in stamped:
            f.pre_save(obj, add=True)  # auto_now(_add), as bulk_create stamps them
        rows.append({f.column: getattr(obj, f.attname) for f in fields})
    name = connection.ops.quote_name
    columns = ", ".join(name(f.column) for f in fields)
    # Types without their (n), as bulk_create's UNNEST: a value too long fails on the column.
    types = ", ".join(f"{name(f.column)} {f.db_type(connection).split('(')[0]}" for f in fields)
    conflict = ""
    if unique_field is not None:
        changed = (name(meta.get_field(field_name).column) for field_name in update_fields)
        conflict = (
            f" ON CONFLICT ({name(meta.get_field(unique_field).column)})"
            f" DO UPDATE SET {', '.join(f'{column} = EXCLUDED.{column}' for column in changed)}"
        )
    # Names come from the model, quoted; the rows are the one parameter.
    sql = (
        f"INSERT INTO {name(meta.db_table)} ({columns}) SELECT {columns}"  # noqa: S608
        f" FROM jsonb_to_recordset(%s::jsonb) AS page({types}){conflict}"
        f" RETURNING {name(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows, default=json_value, ensure_ascii=False)])
        pks = [pk for (pk,) in cursor.fetchall()]
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def delete_rows(rows: QuerySet[Any]) -> int:
    """DELETE these rows in one statement, without Django's collector (which would load every
    row, and every row that refers to it, first). Only for models nothing cascades from, or
    whose dependants the caller deleted first; no signals are sent."""
    return rows._raw_delete(rows.db)


def queued_expiry() -> timedelta:
    """How long a queued sync whose task never started (a lost message) blocks a new request:
    the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT), after which Redis would have
    delivered the message again; an hour in embedded mode, which has none."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}
    return timedelta(seconds=options.get("visibility_timeout", 3600))
