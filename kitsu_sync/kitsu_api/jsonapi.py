"""JSON:API deserialisation: a pure function from a decoded body to linked resources.

`parse_document` checks the shape it relies on and raises `KitsuResponseError` (the project's
own error) for anything else, so that callers never meet a stray KeyError or TypeError.
Relationship linkage is resolved against `included` and the primary data, as JSON:API says,
once, while parsing: each relationship holds the resources it names, so no resource holds an
index of its document and a parsed page is freed by reference counting alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kitsu_sync.kitsu_api.errors import KitsuResponseError


@dataclass(frozen=True, slots=True)
class ResourceIdentifier:
    type: str
    id: str


@dataclass(slots=True)
class Relationship:
    """One relationship of a resource.

    `loaded` is true when the payload carried linkage (`data`), which Kitsu sends only for
    relationships named in `include`. `data` is None for an empty to-one relationship, a
    list for to-many. `resources` holds the resources `data` names that the document carried,
    in linkage order (filled by `parse_document`).
    """

    links: dict[str, Any] = field(default_factory=dict)
    loaded: bool = False
    data: ResourceIdentifier | list[ResourceIdentifier] | None = None
    resources: tuple[Resource, ...] = field(default=(), repr=False, compare=False)


class _Relationships(Mapping[str, Relationship]):
    """A resource's relationships by name, over the payload's own object.

    Kitsu sends a dozen links-only relationships per anime, which nobody reads: those become a
    `Relationship` on first access; the ones with linkage are built (and resolved) at parse time.
    """

    __slots__ = ("_built", "_raw")

    def __init__(self, raw: dict[str, Any], built: dict[str, Relationship] | None) -> None:
        self._raw = raw
        self._built = built

    def __getitem__(self, name: str) -> Relationship:
        if self._built is None:
            self._built = {}
        relationship = self._built.get(name)
        if relationship is None:
            value = self._raw[name]  # a dict or None, checked by parse_document
            links = value.get("links") if value else None
            relationship = self._built[name] = Relationship(links=links or {})
        return relationship

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


@dataclass(slots=True, weakref_slot=True)
class Resource:
    type: str
    id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    relationships: Mapping[str, Relationship] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

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
            return list(relationship.resources)
        return relationship.resources[0] if relationship.resources else None

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

    @property
    def total(self) -> int | None:
        """How many resources the whole collection holds: Kitsu's `meta.count` on paginated
        listings (docs/kitsu-api.md §4.3), or None when it sent no usable count."""
        count = self.meta.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return None
        return count


def _fail(message: str) -> KitsuResponseError:
    return KitsuResponseError(f"Malformed JSON:API document: {message}")


def _where(section: str, position: int | None) -> str:
    # Error locations are built only when an error is raised: a page has ~2,000 resources.
    return section if position is None else f"{section}[{position}]"


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"{where} must be an object")
    return value


def _member(
    container: dict[str, Any], key: str, section: str, position: int | None
) -> dict[str, Any]:
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"{_where(section, position)}.{key} must be an object")
    return value


def _identifier(value: Any, where: str, position: int | None = None) -> ResourceIdentifier:
    if isinstance(value, dict):
        type_, id_ = value.get("type"), value.get("id")
        if isinstance(type_, str) and type_ and isinstance(id_, str):
            return ResourceIdentifier(type=type_, id=id_)
    if not isinstance(value, dict):
        raise _fail(f"{_where(where, position)} must be a resource identifier object")
    type_, id_ = _type_and_id(value, _where(where, position))
    return ResourceIdentifier(type=type_, id=id_)


def _type_and_id(value: dict[str, Any], where: str) -> tuple[str, str]:
    type_, id_ = value.get("type"), value.get("id")
    if not isinstance(type_, str) or not type_:
        raise _fail(f"{where}.type must be a non-empty string")
    # Kitsu always sends ids as strings; accept integers from older payloads, nothing else.
    if isinstance(id_, bool) or not isinstance(id_, str | int):
        raise _fail(f"{where}.id must be a string")
    return type_, str(id_)


def _linked_relationship(value: dict[str, Any], where: str) -> Relationship:
    links = _object(value.get("links"), f"{where}.links")
    data = value["data"]
    if data is None:
        linkage: ResourceIdentifier | list[ResourceIdentifier] | None = None
    elif isinstance(data, list):
        where = f"{where}.data"
        linkage = [_identifier(item, where, i) for i, item in enumerate(data)]
    else:
        linkage = _identifier(data, f"{where}.data")
    return Relationship(links=links, loaded=True, data=linkage)


def _relationships(
    raw: dict[str, Any], section: str, position: int | None, linked: list[Relationship]
) -> _Relationships:
    """Checks every relationship object; builds only those with linkage (added to `linked`)."""
    built: dict[str, Relationship] | None = None
    for name, value in raw.items():
        if isinstance(value, dict):
            if "data" in value:
                where = f"{_where(section, position)}.relationships.{name}"
                relationship = _linked_relationship(value, where)
                if built is None:
                    built = {}
                built[name] = relationship
                linked.append(relationship)
                continue
            links = value.get("links")
            if links is None or isinstance(links, dict):
                continue
            raise _fail(f"{_where(section, position)}.relationships.{name}.links must be an object")
        if value is not None:
            raise _fail(f"{_where(section, position)}.relationships.{name} must be an object")
    return _Relationships(raw, built)


def _resource(
    value: Any, section: str, position: int | None, linked: list[Relationship]
) -> Resource:
    if not isinstance(value, dict):
        raise _fail(f"{_where(section, position)} must be a resource identifier object")
    type_, id_ = value.get("type"), value.get("id")
    if not isinstance(type_, str) or not type_ or not isinstance(id_, str):
        type_, id_ = _type_and_id(value, _where(section, position))
    return Resource(
        type=type_,
        id=id_,
        attributes=_member(value, "attributes", section, position),
        relationships=_relationships(
            _member(value, "relationships", section, position), section, position, linked
        ),
        links=_member(value, "links", section, position),
        meta=_member(value, "meta", section, position),
    )


def _resolve(linked: list[Relationship], resources: list[Resource]) -> None:
    """Point each relationship at the resources its linkage names (the first one of each)."""
    index: dict[tuple[str, str], Resource] = {}
    for resource in resources:
        index.setdefault((resource.type, resource.id), resource)
    for relationship in linked:
        data = relationship.data
        if isinstance(data, list):
            found = [index.get((ident.type, ident.id)) for ident in data]
            relationship.resources = tuple(item for item in found if item is not None)
        elif data is not None:
            target = index.get((data.type, data.id))
            if target is not None:
                relationship.resources = (target,)


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
    linked: list[Relationship] = []
    raw_data = payload.get("data")
    data: Resource | list[Resource] | None
    if raw_data is None:
        data = None
    elif isinstance(raw_data, list):
        data = [_resource(item, "data", i, linked) for i, item in enumerate(raw_data)]
    else:
        data = _resource(raw_data, "data", None, linked)

    included_raw = payload.get("included")
    if included_raw is not None and not isinstance(included_raw, list):
        raise _fail("included must be an array")
    included = [_resource(item, "included", i, linked) for i, item in enumerate(included_raw or [])]

    document = Document(
        data=data,
        included=included,
        links=_object(payload.get("links"), "links"),
        meta=_object(payload.get("meta"), "meta"),
        errors=errors,
    )
    if linked:
        _resolve(linked, [*document.resources, *included])
    return document
