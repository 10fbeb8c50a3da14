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


class SecretsFilter(SafeExceptionReporterFilter):
    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, self.cleanse_setting(name, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
