"""Log formatters: plain text or one JSON object per line (LOG_FORMAT), secrets masked in both.

Every line carries what kitsu_sync.logcontext knows (request id, user id, sync run id). No code
of Revenge logs a token or a password on purpose; should one slip into a message, a traceback
or an `extra` field anyway, the formatter masks it before it leaves the process:

- in text, a value after a secret-looking name (`access_token=...`, `"password": "..."`,
  `Authorization: Bearer ...`), a bearer token, the password in a URL, and Revenge's API keys;
- in `extra` fields, a value whose name Django's error reports hide (the same rule as
  revenge_site.reporting.SecretsFilter: API, AUTH, TOKEN, KEY, SECRET, PASS, SIGNATURE).

A bare secret with no name beside it cannot be recognised; the rule stays: never log one.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from kitsu_sync import logcontext

MASK = "********"

_SENSITIVE_NAME = (
    r"(?:[\w-]*(?:token|secret|passw(?:or)?d|passphrase|api[_-]?key|authorization|signature"
    r"|cookie|sessionid|credential|code_verifier)[\w-]*"
    # An OAuth authorization code in a form body (code=...), not every "code: 500".
    r"|(?<![\w-])code(?==))"
)
_SECRET_PATTERNS = (
    # name=value, name: value, "name": "value", 'name': b'value' (a dict's or a form's repr).
    # A quoted value is masked to its closing quote (spaces and commas included); an unquoted
    # one up to the first character that ends a value in a form body, a URL or a repr.
    re.compile(
        rf"(?P<keep>{_SENSITIVE_NAME}[\"']?\s*[:=]\s*(?-i:b)?)"
        r"(?:\"[^\"]*\"|'[^']*'|(?:(?:Bearer|Basic|Token)\s+)?[^\s\"'&,;)}\]]+)",
        re.IGNORECASE,
    ),
    re.compile(r"(?P<keep>\b(?:Bearer|Basic)\s+)[\w.~+/=-]{8,}", re.IGNORECASE),
    # https://user:password@host
    re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)", re.IGNORECASE),
    # Revenge's API keys (services/api_keys.py): the public prefix stays, the rest goes.
    re.compile(r"(?P<keep>\brvk_[0-9a-f]{12}_)[\w-]+"),
)
# Django's rule for names whose values its error reports hide (also SecretsFilter's).
_SECRET_FIELD = SafeExceptionReporterFilter.hidden_settings

# Attributes every LogRecord has: what is left in a record's __dict__ came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_JSON_TYPES = (str, int, float, bool, type(None))


def redact(text: str) -> str:
    """`text` with every value that looks like a secret replaced by MASK."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda match: match["keep"] + MASK, text)
    return text


class PlainFormatter(logging.Formatter):
    """The classic one-line format, with secrets masked in the message and the traceback (not
    in the prefix: a logger named `...tokens` is no secret)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        masked = logging.makeLogRecord({**vars(record), "message": redact(record.message)})
        return super().formatMessage(masked)

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the log context
    (request_id, user_id, sync_run_id when known), `extra` fields that are plain values, and the
    traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **logcontext.current(),
        }
        for name, value in vars(record).items():
            if name in _RECORD_ATTRIBUTES or name in line or not isinstance(value, _JSON_TYPES):
                continue
            if _SECRET_FIELD.search(name):
                line[name] = MASK
            else:
                line[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, default=str, ensure_ascii=False)
