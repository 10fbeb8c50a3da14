"""JSON:API request parameters and errors, as jsonapi-resources 0.9 (JR) reads and writes them.

Filters may be camelCase or snake_case (JR un-formats keys), comma lists are CSV, the last
of repeated keys wins (Rails), and pagination links repeat filter/include/sort/fields with
their keys sorted and brackets percent-encoded (docs/kitsu-api.md §4.3).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

JSONAPI_MEDIA_TYPE = "application/vnd.api+json"
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


class ApiError(Exception):
    """An error response: status, full JSON body and extra headers."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def jr_error(status: int, title: str, detail: str, code: str | int | None = None) -> ApiError:
    """A JR error object: status and code are strings there."""
    return ApiError(
        status,
        {
            "errors": [
                {
                    "title": title,
                    "detail": detail,
                    "code": str(code if code is not None else status),
                    "status": str(status),
                }
            ]
        },
    )


def route_not_found() -> ApiError:
    # KS ErrorController: an integer status, unlike JR's errors.
    return ApiError(404, {"errors": [{"status": 404, "title": "Route Not Found"}]})


def record_not_found(key: str) -> ApiError:
    return jr_error(
        404, "Record not found", f"The record identified by {key} could not be found.", 404
    )


def invalid_field_value(field_name: str, value: str) -> ApiError:
    return jr_error(
        400, "Invalid field value", f"{value} is not a valid value for {field_name}.", 103
    )


def internal_server_error() -> ApiError:
    return jr_error(500, "Internal Server Error", "Internal Server Error", 500)


def underscore(key: str) -> str:
    """JR's key un-formatting: `userId` and `user_id` are the same filter."""
    return _CAMEL_BOUNDARY.sub("_", key).replace("-", "_").lower()


def camelize(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def csv_values(value: str) -> list[str]:
    """JR `verify_filter` runs CSV.parse_line over a filter value."""
    if value == "":
        return [""]
    try:
        return [item.strip() for item in next(csv.reader([value]))]
    except (csv.Error, StopIteration):
        return [value]


def ruby_to_i(value: str) -> int:
    """Ruby's String#to_i: the leading integer, 0 when there is none."""
    match = re.match(r"\s*([-+]?\d+)", value)
    return int(match[1]) if match else 0


def parse_int_id(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@dataclass
class Query:
    """The JSON:API parameters of one request, checked against what a resource allows."""

    filters: dict[str, str] = field(default_factory=dict)
    raw_filter_keys: dict[str, str] = field(default_factory=dict)
    include: dict[str, Any] = field(default_factory=dict)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    fields: dict[str, set[str]] = field(default_factory=dict)
    limit: int = 10
    offset: int = 0
    echo: list[tuple[str, str]] = field(default_factory=list)

    def filter_values(self, name: str) -> list[str] | None:
        value = self.filters.get(name)
        return None if value is None else csv_values(value)

    def has_filter(self, name: str) -> bool:
        return name in self.filters


def last_values(args: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Rails keeps the last value of a repeated query key."""
    found: dict[str, str] = {}
    for key, value in args:
        found[key] = value
    return found


def parse_query(
    args: Iterable[tuple[str, str]],
    *,
    resource_type: str,
    allowed_filters: Iterable[str],
    sortable: Iterable[str] = (),
    include_validator: Callable[[dict[str, Any]], None] | None = None,
    field_validator: Callable[[str, set[str]], None] | None = None,
    max_limit: int | None = 20,
    default_limit: int = 10,
    paginate: bool = True,
) -> Query:
    params = last_values(args)
    query = Query(limit=default_limit)
    allowed = set(allowed_filters)
    for key, value in params.items():
        if key.startswith("filter[") and key.endswith("]"):
            raw = key[len("filter[") : -1]
            name = underscore(raw)
            if name not in allowed:
                raise jr_error(400, "Filter not allowed", f"{raw} is not allowed.", 102)
            query.filters[name] = value
            query.raw_filter_keys[name] = raw
            query.echo.append((key, value))
        elif key.startswith("fields[") and key.endswith("]"):
            type_name = key[len("fields[") : -1]
            names = {name for name in csv_values(value) if name}
            if field_validator is not None:
                field_validator(type_name, names)
            query.fields[camelize(underscore(type_name))] = names
            query.echo.append((key, value))
        elif key == "include":
            query.include = parse_include(value)
            if include_validator is not None:
                include_validator(query.include)
            query.echo.append((key, value))
        elif key == "sort":
            query.sort = parse_sort(value, resource_type, set(sortable))
            query.echo.append((key, value))
    if paginate:
        query.limit, query.offset = parse_page(params, max_limit, default_limit)
    return query


def parse_include(value: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in value.split(","):
        path = path.strip()
        if not path:
            continue
        node = tree
        for name in path.split("."):
            node = node.setdefault(name, {})
    return tree


def parse_sort(value: str, resource_type: str, sortable: set[str]) -> list[tuple[str, bool]]:
    criteria = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        descending = item.startswith("-")
        name = item[1:] if descending else item
        key = ".".join(camelize(underscore(part)) for part in name.split("."))
        if key not in sortable:
            raise jr_error(
                400,
                "Invalid sort criteria",
                f"{name} is not a valid sort criteria for {resource_type}",
                114,
            )
        criteria.append((key, descending))
    return criteria


def parse_page(
    params: Mapping[str, str], max_limit: int | None, default_limit: int
) -> tuple[int, int]:
    """JR OffsetPaginator; page[number]/page[size] are ignored, as on kitsu.app."""
    raw_limit = params.get("page[limit]")
    raw_offset = params.get("page[offset]")
    limit, offset = default_limit, 0
    if raw_limit is not None:
        if not re.fullmatch(r"-?\d+", raw_limit.strip()) or int(raw_limit) < 1:
            raise jr_error(
                400,
                "Invalid page value",
                f"{raw_limit} is not a valid value for limit page parameter.",
                118,
            )
        limit = int(raw_limit)
    if raw_offset is not None:
        if not re.fullmatch(r"-?\d+", raw_offset.strip()) or int(raw_offset) < 0:
            raise jr_error(
                400,
                "Invalid page value",
                f"{raw_offset} is not a valid value for offset page parameter.",
                118,
            )
        offset = int(raw_offset)
    if max_limit is not None and limit > max_limit:
        raise jr_error(
            400, "Invalid page value", f"Limit exceeds maximum page size of {max_limit}.", 118
        )
    return limit, offset


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Rails `to_query`: CGI-escaped `key=value` strings, sorted, joined by `&`."""
    return "&".join(sorted(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in pairs))


def page_links(url: str, query: Query, count: int) -> dict[str, str]:
    """first/prev/next/last as JR's OffsetPaginator builds them (last = max(count-limit, 0))."""

    def link(offset: int) -> str:
        pairs = [*query.echo, ("page[limit]", str(query.limit)), ("page[offset]", str(offset))]
        return f"{url}?{encode_query(pairs)}"

    links = {"first": link(0)}
    if query.offset > 0:
        links["prev"] = link(max(query.offset - query.limit, 0))
    if query.offset + query.limit < count:
        links["next"] = link(query.offset + query.limit)
    links["last"] = link(max(count - query.limit, 0))
    return links


def parse_range(value: str) -> tuple[float | None, float | None, bool] | None:
    """Kitsu's numeric search filters: `n`, `a..b` (inclusive), `a...b` (exclusive), open ends."""
    text = value.strip()
    try:
        if "..." in text:
            low, high = text.split("...", 1)
            return (float(low) if low else None, float(high) if high else None, True)
        if ".." in text:
            low, high = text.split("..", 1)
            return (float(low) if low else None, float(high) if high else None, False)
        number = float(text)
    except ValueError:
        return None
    return number, number, False


def in_range(value: float | None, bounds: tuple[float | None, float | None, bool]) -> bool:
    if value is None:
        return False
    low, high, exclusive = bounds
    if low is not None and value < low:
        return False
    return not (high is not None and (value >= high if exclusive else value > high))


def sort_records(
    records: list[Any],
    criteria: Sequence[tuple[str, bool]],
    keys: Mapping[str, Callable[[Any], Any]],
) -> list[Any]:
    """Stable multi-key sort; nulls always last, in either direction."""
    ordered = list(records)
    for name, descending in reversed(criteria):
        values = list(map(keys[name], ordered))
        present = [i for i, value in enumerate(values) if value is not None]
        present.sort(key=values.__getitem__, reverse=descending)
        missing = [r for r, value in zip(ordered, values, strict=True) if value is None]
        ordered = [ordered[i] for i in present] + missing
    return ordered


_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))
# Rails escapes these in JSON (escape_html_entities_in_json); as bytes, one fast pass each.
_RAILS_ESCAPES = (
    (b"&", b"\\u0026"),
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


class RawJson(bytes):
    """JSON already encoded by `encode_json` (Rails escapes included), spliced in as it is."""


def encode_json(payload: Any) -> bytes:
    """Rails' JSON: UTF-8 as is, but &, <, > (and U+2028/9) escaped."""
    body = _ENCODER.encode(payload).encode("utf-8")
    for raw, escaped in _RAILS_ESCAPES:
        if raw in body:
            body = body.replace(raw, escaped)
    return body


def _spliced(value: Any) -> bool:
    if isinstance(value, list):
        return any(isinstance(item, RawJson) for item in value)
    return isinstance(value, RawJson)


def _encode_member(value: Any) -> bytes:
    if isinstance(value, RawJson):
        return value
    if _spliced(value):
        items = (item if isinstance(item, RawJson) else encode_json(item) for item in value)
        return b"[" + b",".join(items) + b"]"
    return encode_json(value)


def encode_document(payload: Any) -> bytes:
    """`encode_json`, where a top-level object's values, or the items of its list values, may
    be `RawJson`: the escapes work character by character, so splicing gives the same bytes."""
    if isinstance(payload, dict) and any(_spliced(value) for value in payload.values()):
        members = (encode_json(k) + b":" + _encode_member(v) for k, v in payload.items())
        return b"{" + b",".join(members) + b"}"
    return encode_json(payload)
