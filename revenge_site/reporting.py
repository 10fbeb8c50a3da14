"""Django's error reports without secrets, in any frame.

`sensitive_variables` marks the functions Revenge's own Django code runs, but the Kitsu client
(`kitsu_sync.kitsu_api`) knows no Django, and a crash inside it would show its locals (the
password grant's form, say) in the report mailed to ADMINS. This filter cleans every frame's
variables the way Django cleans settings: a name, or a dict key at any depth, that looks like
API, TOKEN, KEY, SECRET, PASS or SIGNATURE has its value replaced.
"""

from __future__ import annotations

from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from revenge_site.logs import redact


class SecretsFilter(SafeExceptionReporterFilter):
    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, self._cleansed(name, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def _cleansed(self, name: str, value: Any) -> Any:
        """By name, as Django does; then text that holds a secret under another name (a
        library's request `body` carrying `password=...`) through the log masking."""
        value = self.cleanse_setting(name, value)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            return redact(value)
        return value
