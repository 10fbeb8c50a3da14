"""KitsuClient with pages in flight: pages fetched ahead in threads, in order, exactly the
pages links.next leads to. HTTP is faked with `responses`; a page's answer depends only on its
URL, so pages asked for at once get the same answers as pages asked for in turn."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from itertools import islice, pairwise
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from kitsu_sync.kitsu_api import (
    KitsuClient,
    KitsuResponseError,
    KitsuUnauthorized,
    KitsuUsageError,
    RetryPolicy,
    Transport,
)
from kitsu_sync.kitsu_api.jsonapi import Document
from tests.kitsu_api import payloads
from tests.kitsu_api.payloads import API_URL
from tests.sandbox_handle import SandboxHandle

JSONAPI = {"Content-Type": "application/vnd.api+json"}
ENTRIES_URL = f"{API_URL}/library-entries"
DEADLINE = 10.0


class FakeLibrary:
    """A paginating /library-entries (docs/kitsu-api.md §4.3) whose answer is a function of
    page[offset].

    `count_at(offset)` is the library size a page sees, so a library that grows or shrinks
    mid-listing is the same whatever order the requests arrive in. `statuses` makes pages
    fail; `gate`, when given, holds every page after the first until it is set.
    """

    def __init__(
        self,
        *,
        count_at: Callable[[int], int],
        limit: int,
        statuses: dict[int, int] | None = None,
        gate: threading.Event | None = None,
        with_count: bool = True,
    ) -> None:
        self.count_at = count_at
        self.limit = limit
        self.statuses = statuses or {}
        self.gate = gate
        self.with_count = with_count
        self.changed = threading.Condition()
        self.active = 0
        self.most_active = 0
        self.offsets: list[int] = []

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        offset = int(parse_qs(urlsplit(request.url).query).get("page[offset]", ["0"])[0])
        with self.changed:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.offsets.append(offset)
            self.changed.notify_all()
        try:
            if self.gate is not None and offset > 0:
                self.gate.wait(DEADLINE)
            if offset in self.statuses:
                return self.statuses[offset], JSONAPI, json.dumps(payloads.INVALID_TOKEN_ERROR)
            body = payloads.library_page(
                offset=offset, limit=self.limit, count=self.count_at(offset)
            )
            if not self.with_count:
                del body["meta"]["count"]
            # Which URL the page answered, so that a test can follow the chain of links.
            body["meta"]["requested"] = request.url
            return 200, JSONAPI, json.dumps(body)
        finally:
            with self.changed:
                self.active -= 1
                self.changed.notify_all()

    def wait_for(self, condition: Callable[[FakeLibrary], bool]) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: condition(self), timeout=DEADLINE)


def serve(mock: responses.RequestsMock, library: Any) -> None:
    mock.add_callback("GET", re.compile(re.escape(ENTRIES_URL) + r"(\?.*)?$"), callback=library)


def fixed(count: int) -> Callable[[int], int]:
    return lambda offset: count


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def offsets(pages: list[Document]) -> list[int]:
    return [int(query_of(page.meta["requested"]).get("page[offset]", ["0"])[0]) for page in pages]


def entry_ids(pages: list[Document]) -> list[list[str]]:
    return [[entry.id for entry in page.resources] for page in pages]


def assert_links_chain(pages: list[Document]) -> None:
    """Each page is the one its predecessor's links.next names; the last names none."""
    for before, after in pairwise(pages):
        assert before.next_url is not None
        assert query_of(after.meta["requested"]) == query_of(before.next_url)
    assert pages[-1].next_url is None


def page_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("kitsu-page")]


def assert_no_page_threads() -> None:
    for thread in page_threads():
        thread.join(DEADLINE)
    assert page_threads() == []


@pytest.fixture
def library_pages(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> Callable[..., list[Document]]:
    def read(library: FakeLibrary, pages_in_flight: int) -> list[Document]:
        serve(mocked, library)
        return list(
            kitsu_client.iter_library_pages(
                user_id=1, page_limit=library.limit, pages_in_flight=pages_in_flight
            )
        )

    return read


@pytest.mark.parametrize("pages_in_flight", [2, 3, 4])
@pytest.mark.parametrize("count", [0, 1, 3, 4, 5, 9, 10, 11])
def test_pages_ahead_are_the_pages_read_one_at_a_time(
    library_pages: Callable[..., list[Document]], count: int, pages_in_flight: int
) -> None:
    in_turn_library = FakeLibrary(count_at=fixed(count), limit=2)
    in_turn = library_pages(in_turn_library, 1)
    ahead_library = FakeLibrary(count_at=fixed(count), limit=2)

    ahead = library_pages(ahead_library, pages_in_flight)

    assert entry_ids(ahead) == entry_ids(in_turn)
    assert offsets(ahead) == offsets(in_turn) == list(range(0, max(count, 1), 2))
    assert_links_chain(ahead)
    # No page asked for twice, and none past the count (not even when it is a multiple).
    assert sorted(ahead_library.offsets) == offsets(in_turn)
    assert ahead_library.most_active <= pages_in_flight
    assert_no_page_threads()


def test_up_to_n_pages_are_fetched_while_the_caller_holds_a_page(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    library = FakeLibrary(count_at=fixed(20), limit=2, gate=threading.Event())
    serve(mocked, library)
    pages = kitsu_client.iter_library_pages(user_id=1, page_limit=2, pages_in_flight=3)
    try:
        first = next(pages)
        # The caller holds page 1 and asks for nothing: pages 2 to 4 are on their way.
        assert library.wait_for(lambda lib: lib.active == 3)
        assert sorted(library.offsets) == [0, 2, 4, 6]
    finally:
        library.gate.set()
    rest = list(pages)

    assert offsets([first, *rest]) == list(range(0, 20, 2))
    assert library.most_active == 3
    assert len(library.offsets) == 10


def test_one_page_in_flight_asks_only_when_the_caller_wants_a_page(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    client = KitsuClient(make_transport(), pages_in_flight=3)
    library = FakeLibrary(count_at=fixed(5), limit=2)
    serve(mocked, library)

    pages = client.iter_library_pages(user_id=1, page_limit=2, pages_in_flight=1)
    assert len(mocked.calls) == 0
    next(pages)
    assert len(mocked.calls) == 1
    next(pages)
    assert len(mocked.calls) == 2
    assert page_threads() == []


def test_the_clients_default_applies_when_no_override_is_given(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    client = KitsuClient(make_transport(), pages_in_flight=2)
    library = FakeLibrary(count_at=fixed(20), limit=2, gate=threading.Event())
    serve(mocked, library)
    pages = client.iter_library_pages(user_id=1, page_limit=2)
    try:
        next(pages)
        assert library.wait_for(lambda lib: lib.active == 2)
    finally:
        library.gate.set()
    pages.close()

    assert library.most_active == 2
    assert_no_page_threads()


def test_a_library_that_grows_is_followed_to_its_new_end(
    library_pages: Callable[..., list[Document]],
) -> None:
    # 10 entries when listing starts; pages from offset 6 on see 15.
    def count_at(offset: int) -> int:
        return 10 if offset < 6 else 15

    in_turn = library_pages(FakeLibrary(count_at=count_at, limit=2), 1)
    library = FakeLibrary(count_at=count_at, limit=2)

    ahead = library_pages(library, 3)

    assert offsets(ahead) == offsets(in_turn) == list(range(0, 15, 2))
    assert entry_ids(ahead) == entry_ids(in_turn)
    assert_links_chain(ahead)


def test_a_library_that_shrinks_stops_where_links_next_stops(
    library_pages: Callable[..., list[Document]],
) -> None:
    # 20 entries when listing starts; pages from offset 4 on see 5, so offset 4 is the last.
    def count_at(offset: int) -> int:
        return 20 if offset < 4 else 5

    in_turn = library_pages(FakeLibrary(count_at=count_at, limit=2), 1)
    library = FakeLibrary(count_at=count_at, limit=2)

    ahead = library_pages(library, 4)

    assert offsets(ahead) == offsets(in_turn) == [0, 2, 4]
    assert entry_ids(ahead) == entry_ids(in_turn)
    assert_links_chain(ahead)
    # Guessed pages past the new end were fetched and thrown away.
    assert set(library.offsets) > {0, 2, 4}
    assert_no_page_threads()


def test_a_failing_guess_past_the_end_is_thrown_away_unseen(
    library_pages: Callable[..., list[Document]],
) -> None:
    def count_at(offset: int) -> int:
        return 20 if offset < 4 else 5

    library = FakeLibrary(count_at=count_at, limit=2, statuses={6: 401, 8: 401})

    pages = library_pages(library, 4)

    assert offsets(pages) == [0, 2, 4]


def test_a_next_link_that_is_not_the_guessed_page_is_followed(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    """Kitsu's own link wins over the guess, e.g. when the page size changes mid-listing."""
    count = 12

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        query = query_of(request.url)
        offset = int(query.get("page[offset]", ["0"])[0])
        limit = int(query["page[limit]"][0])
        body = payloads.library_page(offset=offset, limit=limit, count=count)
        if offset == 2 and limit == 2:
            # From here Kitsu pages by 3.
            body["links"]["next"] = payloads.kitsu_link(
                API_URL, "library-entries", {"page[limit]": 3, "page[offset]": 4}
            )
        body["meta"]["requested"] = request.url
        return 200, JSONAPI, json.dumps(body)

    serve(mocked, page)

    pages = list(kitsu_client.iter_library_pages(user_id=1, page_limit=2, pages_in_flight=3))

    assert offsets(pages) == [0, 2, 4, 7, 10]
    assert [entry for ids in entry_ids(pages) for entry in ids] == [
        str(35128879 + n) for n in range(count)
    ]
    assert_links_chain(pages)


def test_without_a_count_the_next_link_is_fetched_one_page_ahead(
    library_pages: Callable[..., list[Document]],
) -> None:
    library = FakeLibrary(count_at=fixed(9), limit=2, with_count=False)

    pages = library_pages(library, 4)

    assert offsets(pages) == [0, 2, 4, 6, 8]
    assert library.offsets == [0, 2, 4, 6, 8]
    assert_links_chain(pages)


def test_a_next_link_without_an_offset_is_fetched_one_page_ahead(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    cursors = {"": "b", "b": "c", "c": None}

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        cursor = query_of(request.url).get("page[cursor]", [""])[0]
        after = cursors[cursor]
        links = {}
        if after is not None:
            links["next"] = f"{ENTRIES_URL}?page%5Bcursor%5D={after}"
        body = {
            "data": [payloads.library_entry_resource(cursor or "a", anime_id=None)],
            "meta": {"count": 3},
            "links": links,
        }
        return 200, JSONAPI, json.dumps(body)

    serve(mocked, page)

    pages = list(kitsu_client.iter_library_pages(user_id=1, pages_in_flight=3))

    assert [page.resources[0].id for page in pages] == ["a", "b", "c"]
    assert len(mocked.calls) == 3


def test_a_refused_page_surfaces_after_the_pages_before_it(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    library = FakeLibrary(count_at=fixed(20), limit=2, statuses={6: 401})
    serve(mocked, library)
    pages = kitsu_client.iter_library_pages(user_id=1, page_limit=2, pages_in_flight=4)

    read = [next(pages), next(pages), next(pages)]
    with pytest.raises(KitsuUnauthorized):
        next(pages)

    assert offsets(read) == [0, 2, 4]
    # Where sync._library_pages resumes after refreshing the token: the refused page.
    assert query_of(read[-1].next_url)["page[offset]"] == ["6"]
    assert_no_page_threads()


def test_pagination_that_loops_is_stopped_after_the_page_that_loops(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    page_two = f"{ENTRIES_URL}?filter%5BuserId%5D=1&page%5Blimit%5D=1&page%5Boffset%5D=1"
    page_three = f"{ENTRIES_URL}?filter%5BuserId%5D=1&page%5Blimit%5D=1&page%5Boffset%5D=2"
    links = {"0": {"next": page_two}, "1": {"next": page_three}, "2": {"next": page_two}}

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        offset = query_of(request.url).get("page[offset]", ["0"])[0]
        body = {
            "data": [payloads.library_entry_resource(offset, anime_id=None)],
            "meta": {"count": 5},
            "links": links.get(offset, {}),
        }
        return 200, JSONAPI, json.dumps(body)

    serve(mocked, page)
    pages = kitsu_client.iter_library_pages(user_id=1, page_limit=1, pages_in_flight=3)

    read = [next(pages), next(pages), next(pages)]
    with pytest.raises(KitsuResponseError, match="already read"):
        next(pages)

    assert [doc.resources[0].id for doc in read] == ["0", "1", "2"]
    assert_no_page_threads()


def close_by_calling_close(open_pages: Callable[[], Iterator[Document]]) -> None:
    pages = open_pages()
    next(pages)
    pages.close()  # type: ignore[attr-defined]


def close_by_islice(open_pages: Callable[[], Iterator[Document]]) -> None:
    assert len(list(islice(open_pages(), 2))) == 2


class WriteFailed(Exception):
    pass


def close_by_an_error_in_the_caller(open_pages: Callable[[], Iterator[Document]]) -> None:
    def write_every_page() -> None:
        for _ in open_pages():
            raise WriteFailed

    with pytest.raises(WriteFailed):
        write_every_page()


@pytest.mark.parametrize(
    "stop", [close_by_calling_close, close_by_islice, close_by_an_error_in_the_caller]
)
def test_stopping_early_leaves_no_thread_running(
    mocked: responses.RequestsMock,
    kitsu_client: KitsuClient,
    stop: Callable[[Callable[[], Iterator[Document]]], None],
) -> None:
    library = FakeLibrary(count_at=fixed(40), limit=2)
    serve(mocked, library)

    stop(lambda: kitsu_client.iter_library_pages(user_id=1, page_limit=2, pages_in_flight=4))

    # At once: stopping waits for the requests in progress and ends every thread.
    assert page_threads() == []
    # Nothing was asked for after the stop: at most the pages in flight beyond those read.
    asked = len(library.offsets)
    assert asked <= 2 + 4
    assert len(mocked.calls) == asked


def test_closing_waits_for_requests_in_progress(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    library = FakeLibrary(count_at=fixed(20), limit=2, gate=threading.Event())
    serve(mocked, library)
    pages = kitsu_client.iter_library_pages(user_id=1, page_limit=2, pages_in_flight=3)
    next(pages)
    assert library.wait_for(lambda lib: lib.active == 3)

    closer = threading.Thread(target=pages.close)
    closer.start()
    library.gate.set()
    closer.join(DEADLINE)

    assert not closer.is_alive()
    assert page_threads() == []
    assert library.active == 0
    assert len(library.offsets) == 4


@pytest.mark.parametrize("value", [0, -1, 11, True, 2.0, "3"])
def test_pages_in_flight_must_be_between_one_and_ten(
    mocked: responses.RequestsMock,
    kitsu_client: KitsuClient,
    make_transport: Callable[..., Transport],
    value: Any,
) -> None:
    with pytest.raises(KitsuUsageError, match="pages_in_flight"):
        KitsuClient(make_transport(), pages_in_flight=value)
    with pytest.raises(KitsuUsageError, match="pages_in_flight"):
        kitsu_client.iter_library_pages(user_id=1, pages_in_flight=value)
    with pytest.raises(KitsuUsageError, match="pages_in_flight"):
        kitsu_client.iter_documents("anime", pages_in_flight=value)

    assert len(mocked.calls) == 0


def test_season_anime_with_a_limit_asks_for_no_page_it_would_throw_away(
    mocked: responses.RequestsMock, make_transport: Callable[..., Transport]
) -> None:
    client = KitsuClient(make_transport(), pages_in_flight=4)

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        offset = int(query_of(request.url).get("page[offset]", ["0"])[0])
        body = {
            "data": [payloads.anime_resource(str(n)) for n in range(offset + 1, offset + 21)],
            "meta": {"count": 200},
            "links": {
                "next": payloads.kitsu_link(
                    API_URL, "anime", {"page[limit]": 20, "page[offset]": offset + 20}
                )
            },
        }
        return 200, JSONAPI, json.dumps(body)

    mocked.add_callback("GET", re.compile(re.escape(f"{API_URL}/anime") + r"(\?.*)?$"), page)

    anime = list(client.season_anime("fall", 2024, limit=25))

    assert [a.id for a in anime] == [str(n) for n in range(1, 26)]
    assert len(mocked.calls) == 2


# --- against the sandbox over real HTTP -----------------------------------------------------------

NO_WAIT = RetryPolicy(attempts=3, backoff=0, jitter=0)
LIBRARY_ROUTE = "GET /api/edge/library-entries"


def sandbox_client(handle: SandboxHandle) -> KitsuClient:
    transport = Transport(
        api_url=handle.api_url,
        oauth_url=handle.oauth_url,
        retry=NO_WAIT,
        sleep=lambda seconds: None,
        timeout=(2, 30),
    )
    return KitsuClient(transport)


def page_offset(page: Document) -> int:
    """A sandbox page's own offset: its prev link's plus the limit (docs/kitsu-api.md §4.3), 0
    without one."""
    prev = page.links.get("prev")
    if prev is None:
        return 0
    query = query_of(prev)
    return int(query["page[offset]"][0]) + int(query["page[limit]"][0])


def assert_sandbox_links_chain(pages: list[Document]) -> None:
    for before, after in pairwise(pages):
        assert before.next_url is not None
        assert int(query_of(before.next_url)["page[offset]"][0]) == page_offset(after)
    assert pages[-1].next_url is None


@pytest.mark.parametrize("entries", [0, 1, 499, 500, 501, 1001])
def test_a_sandbox_library_reads_the_same_with_pages_ahead(
    sandbox_factory: Callable[..., SandboxHandle], entries: int
) -> None:
    handle = sandbox_factory(users=1, entries=entries)
    client = sandbox_client(handle)
    user = handle.credentials(1)
    token = handle.login(1)["access_token"]
    # Every kind (no filter[kind]), so that the library holds exactly `entries` entries.
    params = {
        "filter[userId]": user.user_id,
        "page[limit]": 500,
        "include": "anime,anime.mappings",
        "sort": "updatedAt",
    }

    def listing(pages_in_flight: int) -> tuple[list[Document], int]:
        before = handle.stats()["by_route"].get(LIBRARY_ROUTE, 0)
        pages = list(
            client.iter_documents(
                "library-entries", params=params, token=token, pages_in_flight=pages_in_flight
            )
        )
        return pages, handle.stats()["by_route"].get(LIBRARY_ROUTE, 0) - before

    in_turn, _ = listing(1)
    ahead, requests_sent = listing(3)

    assert entry_ids(ahead) == entry_ids(in_turn)
    assert sum(len(ids) for ids in entry_ids(ahead)) == entries
    assert requests_sent == len(ahead) == max(1, -(-entries // 500))
    assert_sandbox_links_chain(ahead)
    assert page_threads() == []


def test_a_token_revoked_mid_listing_fails_after_the_pages_before_it(
    sandbox: SandboxHandle,
) -> None:
    client = sandbox_client(sandbox)
    user = sandbox.credentials(1)
    token = sandbox.login(1)["access_token"]
    options = {"user_id": user.user_id, "page_limit": 10, "sort": "updatedAt"}
    everything = entry_ids(list(client.iter_library_pages(token=token, **options)))
    assert len(everything) >= 5

    pages = client.iter_library_pages(token=token, pages_in_flight=3, **options)
    read = [next(pages)]
    sandbox.revoke_tokens(user.user_id)
    with pytest.raises(KitsuUnauthorized):
        read.extend(pages)
    # As sync._library_pages does: a new token, then on from the refused page.
    renewed = sandbox.login(1)["access_token"]
    resumed = read[-1].next_url
    assert resumed is not None
    rest = list(client.iter_documents(resumed, token=renewed, pages_in_flight=3))

    assert entry_ids(read + rest) == everything
    assert page_threads() == []


def test_a_library_that_grows_mid_listing_is_read_to_its_new_end(sandbox: SandboxHandle) -> None:
    client = sandbox_client(sandbox)
    user = sandbox.credentials(1)
    token = sandbox.login(1)["access_token"]
    owned = {
        entry.related("anime").id
        for page in client.iter_library_pages(user_id=user.user_id, token=token)
        for entry in page.resources
    }
    # Kitsu's default order is by id, and a new entry takes the next id: it goes last.
    pages = client.iter_library_pages(
        user_id=user.user_id, token=token, page_limit=10, pages_in_flight=2
    )
    read = [next(pages)]
    new_anime = [str(n) for n in range(1, 400) if str(n) not in owned][:15]
    for anime_id in new_anime:
        client.create_library_entry(
            token=token, user_id=user.user_id, anime_id=anime_id, attributes={"status": "planned"}
        )
    read.extend(pages)
    after = list(client.iter_library_pages(user_id=user.user_id, token=token, page_limit=10))

    # Two in flight: the pages guessed before the change were not the last, so the listing
    # reaches the new end, exactly as a listing after the change does.
    assert entry_ids(read) == entry_ids(after)
    assert [entry.related("anime").id for entry in read[-1].resources][-5:] == new_anime[-5:]
    assert_sandbox_links_chain(read)


def test_a_library_that_shrinks_mid_listing_ends_where_links_next_does(
    sandbox: SandboxHandle,
) -> None:
    client = sandbox_client(sandbox)
    user = sandbox.credentials(1)
    token = sandbox.login(1)["access_token"]
    before = [
        entry.id
        for page in client.iter_library_pages(user_id=user.user_id, token=token)
        for entry in page.resources
    ]
    pages = client.iter_library_pages(
        user_id=user.user_id, token=token, page_limit=10, pages_in_flight=3
    )
    read = [next(pages)]
    removed = before[-25:]
    for entry_id in removed:
        client.delete_library_entry(token=token, entry_id=entry_id)
    read.extend(pages)

    listed = [entry for ids in entry_ids(read) for entry in ids]
    assert len(listed) == len(set(listed))
    # Entries before the removed ones did not move, so every one of them was read.
    assert set(before[:-25]) <= set(listed) <= set(before)
    assert_sandbox_links_chain(read)
    assert page_threads() == []


def test_leaving_a_sandbox_listing_early_leaves_no_thread(sandbox: SandboxHandle) -> None:
    client = sandbox_client(sandbox)
    user = sandbox.credentials(1)
    token = sandbox.login(1)["access_token"]
    before = sandbox.stats()["by_route"].get(LIBRARY_ROUTE, 0)

    for page in client.iter_library_pages(
        user_id=user.user_id, token=token, page_limit=5, pages_in_flight=4
    ):
        assert page.resources
        break

    assert page_threads() == []
    assert sandbox.stats()["by_route"].get(LIBRARY_ROUTE, 0) - before <= 1 + 4
