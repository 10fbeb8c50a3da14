"""JSON:API deserialisation: a pure function from a decoded body to linked resources.

`parse_document` checks the shape it relies on and raises `KitsuResponseError` (the project's
own error) for anything else, so that callers never meet a stray KeyError or TypeError.
Relationship linkage is resolved against `included` and the primary data, as JSON:API says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kitsu_sync.kitsu_api.errors import KitsuResponseError


@dataclass(frozen=True)
class ResourceIdentifier:
    type: str
    id: str


@dataclass
class Relationship:
    """One relationship of a resource.

    `loaded` is true when the payload carried linkage (`data`), which Kitsu sends only for
    relationships named in `include`. `data` is None for an empty to-one relationship, a
    list for to-many.
    """

    links: dict[str, Any] = field(default_factory=dict)
    loaded: bool = False
    data: ResourceIdentifier | list[ResourceIdentifier] | None = None


@dataclass
class Resource:
    type: str
    id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    relationships: dict[str, Relationship] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # Filled by parse_document: (type, id) -> Resource for everything in the document.
    _index: dict[tuple[str, str], Resource] = field(default_factory=dict, repr=False, compare=False)

    def attr(self, name: str, default: Any = None) -> Any:
        """An attribute, with `default` for a missing key (a null value stays None)."""
        return self.attributes.get(name, default)

    def related(self, name: str) -> Resource | list[Resource] | None:
        """The included resource(s) a relationship points to.

        Returns None for an empty or not-included to-one relationship and [] for a to-many one
        whose linkage was not loaded. Identifiers not present in the document are skipped.
        """
        relationship = self.relationships.get(name)
        if relationship is None or not relationship.loaded:
            return None
        if isinstance(relationship.data, list):
            return [
                self._index[(ident.type, ident.id)]
                for ident in relationship.data
                if (ident.type, ident.id) in self._index
            ]
        if relationship.data is None:
            return None
        return self._index.get((relationship.data.type, relationship.data.id))

    def related_list(self, name: str) -> list[Resource]:
        """Like `related`, always as a list (to-one gives zero or one item)."""
        value = self.related(name)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]


@dataclass
class Document:
    data: Resource | list[Resource] | None
    included: list[Resource] = field(default_factory=list)
    links: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resources(self) -> list[Resource]:
        """Primary data as a list (empty for null data)."""
        if self.data is None:
            return []
        return self.data if isinstance(self.data, list) else [self.data]

    @property
    def next_url(self) -> str | None:
        value = self.links.get("next")
        return value if isinstance(value, str) and value else None


def _fail(message: str) -> KitsuResponseError:
    return KitsuResponseError(f"Malformed JSON:API document: {message}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"{where} must be an object")
    return value


def _identifier(value: Any, where: str) -> ResourceIdentifier:
    if not isinstance(value, dict):
        raise _fail(f"{where} must be a resource identifier object")
    type_, id_ = value.get("type"), value.get("id")
    if not isinstance(type_, str) or not type_:
        raise _fail(f"{where}.type must be a non-empty string")
    # Kitsu always sends ids as strings; accept integers from older payloads, nothing else.
    if isinstance(id_, bool) or not isinstance(id_, str | int):
        raise _fail(f"{where}.id must be a string")
    return ResourceIdentifier(type=type_, id=str(id_))


def _relationship(value: Any, where: str) -> Relationship:
    value = _object(value, where)
    links = _object(value.get("links"), f"{where}.links")
    if "data" not in value:
        return Relationship(links=links)
    data = value["data"]
    if data is None:
        linkage: ResourceIdentifier | list[ResourceIdentifier] | None = None
    elif isinstance(data, list):
        linkage = [_identifier(item, f"{where}.data[{i}]") for i, item in enumerate(data)]
    else:
        linkage = _identifier(data, f"{where}.data")
    return Relationship(links=links, loaded=True, data=linkage)


def _resource(value: Any, where: str) -> Resource:
    ident = _identifier(value, where)
    relationships_raw = _object(value.get("relationships"), f"{where}.relationships")
    return Resource(
        type=ident.type,
        id=ident.id,
        attributes=_object(value.get("attributes"), f"{where}.attributes"),
        relationships={
            str(name): _relationship(rel, f"{where}.relationships.{name}")
            for name, rel in relationships_raw.items()
        },
        links=_object(value.get("links"), f"{where}.links"),
        meta=_object(value.get("meta"), f"{where}.meta"),
    )


def parse_document(payload: Any) -> Document:
    """Deserialise a decoded JSON:API body into a Document with linked resources."""
    if not isinstance(payload, dict):
        raise _fail("the top level must be an object")
    errors_raw = payload.get("errors")
    if errors_raw is not None and not isinstance(errors_raw, list):
        raise _fail("errors must be an array")
    errors = [e for e in (errors_raw or []) if isinstance(e, dict)]

    if "data" not in payload and not errors and "meta" not in payload:
        raise _fail("a document needs data, errors or meta")
    raw_data = payload.get("data")
    data: Resource | list[Resource] | None
    if raw_data is None:
        data = None
    elif isinstance(raw_data, list):
        data = [_resource(item, f"data[{i}]") for i, item in enumerate(raw_data)]
    else:
        data = _resource(raw_data, "data")

    included_raw = payload.get("included")
    if included_raw is not None and not isinstance(included_raw, list):
        raise _fail("included must be an array")
    included = [_resource(item, f"included[{i}]") for i, item in enumerate(included_raw or [])]

    document = Document(
        data=data,
        included=included,
        links=_object(payload.get("links"), "links"),
        meta=_object(payload.get("meta"), "meta"),
        errors=errors,
    )
    index: dict[tuple[str, str], Resource] = {}
    for resource in [*document.resources, *included]:
        index.setdefault((resource.type, resource.id), resource)
    for resource in [*document.resources, *included]:
        resource._index = index
    return document
