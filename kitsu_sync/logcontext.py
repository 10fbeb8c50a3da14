"""What the code is working on now (request id, user id, sync run id), for log lines.

A context variable, so that each thread, and each task of an event loop, sees its own. The web's
middleware (revenge_site.middleware) fills it for a request, the sync and the delivery of
changes to Kitsu fill it where they start, and the log formatters (revenge_site.logs) add it to
every line. Pure Python: importable from any layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_EMPTY: Mapping[str, object] = MappingProxyType({})
_fields: ContextVar[Mapping[str, object]] = ContextVar("log_context", default=_EMPTY)


def current() -> Mapping[str, object]:
    """The fields known now (request_id, user_id, sync_run_id), possibly none."""
    return _fields.get()


def bind(**fields: object) -> None:
    """Add fields to the current context (until the enclosing `scoped` call or request ends)."""
    _fields.set(MappingProxyType({**_fields.get(), **fields}))


def start(**fields: object) -> None:
    """Replace the context: a request starts with nothing of the one before it."""
    _fields.set(MappingProxyType(dict(fields)))


def clear() -> None:
    _fields.set(_EMPTY)


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add fields for the length of a block."""
    token = _fields.set(MappingProxyType({**_fields.get(), **fields}))
    try:
        yield
    finally:
        _fields.reset(token)


def scoped(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with the fields it binds dropped again when it returns (or raises)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _fields.set(_fields.get())
        try:
            return function(*args, **kwargs)
        finally:
            _fields.reset(token)

    return wrapper
