"""Log lines: JSON with LOG_FORMAT=json, the request id (also in the response's X-Request-ID),
the user and sync run ids where known, and no secret in any field, in either format."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from kitsu_sync import logcontext, tasks
from kitsu_sync.services import outbox
from kitsu_sync.services.sync import run_sync
from revenge_site.logs import MASK, JsonFormatter, PlainFormatter
from tests.test_deployment import manage, production_env

NEW_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
ParsedLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_output() -> Iterator[Callable[[logging.Formatter], io.StringIO]]:
    """Send every log record of the test, at any level, through `formatter` into a string."""
    root = logging.getLogger()
    level = root.level
    handlers: list[logging.Handler] = []

    def capture(formatter: logging.Formatter) -> io.StringIO:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        root.addHandler(handler)
        handlers.append(handler)
        root.setLevel(logging.DEBUG)
        return stream

    yield capture
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def json_lines(log_output: Callable[[logging.Formatter], io.StringIO]) -> ParsedLines:
    """The JSON log lines written so far, each parsed (every line must be one JSON object)."""
    stream = log_output(JsonFormatter())
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def lines_of(lines: list[dict[str, Any]], logger: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == logger]


# --- requests -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_request_log_line_is_json_with_the_request_id_its_response_carries(
    client: Client, json_lines: ParsedLines
) -> None:
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    request_id = response.headers["X-Request-ID"]
    assert NEW_REQUEST_ID.fullmatch(request_id)
    # Django logs the 404 after the middleware returned: the id is still known then.
    [line] = lines_of(json_lines(), "django.request")
    assert line["message"] == "Not Found: /no-such-page/"
    assert line["level"] == "WARNING"
    assert line["request_id"] == request_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert "user_id" not in line
    assert logcontext.current() == {}  # nothing left for the next request or task


@pytest.mark.django_db
def test_a_sane_request_id_from_the_proxy_is_kept(client: Client, json_lines: ParsedLines) -> None:
    given = "7f3c2a9e-1b4d-4c8e-9f00-5a6b7c8d9e0f"
    response = client.get("/no-such-page/", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given
    assert lines_of(json_lines(), "django.request")[0]["request_id"] == given


@pytest.mark.django_db
@pytest.mark.parametrize(
    "given",
    ["x" * 129, "two words", "-starts-with-a-dash", 'quote"d', "new\\nline", "semi;colon", "é"],
)
def test_a_request_id_that_is_not_sane_is_replaced(
    client: Client, json_lines: ParsedLines, given: str
) -> None:
    response = client.get("/no-such-page/", headers={"X-Request-ID": given})
    request_id = response.headers["X-Request-ID"]
    assert NEW_REQUEST_ID.fullmatch(request_id)
    assert lines_of(json_lines(), "django.request")[0]["request_id"] == request_id


@pytest.mark.django_db
def test_a_signed_in_persons_request_lines_carry_their_user_id(
    client: Client, json_lines: ParsedLines, make_user: Callable[..., Any]
) -> None:
    user = make_user("alice")
    client.force_login(user)
    response = client.get("/kitsu/syncs/999999/")  # no such run: the view says 404
    assert response.status_code == 404
    [line] = lines_of(json_lines(), "django.request")
    assert line["user_id"] == user.pk
    assert line["request_id"] == response.headers["X-Request-ID"]


# --- syncs and deliveries -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_syncs_log_lines_carry_the_user_id_and_the_sync_run_id(
    sandbox_factory: Callable[..., Any],
    kitsu_at: Callable[..., Any],
    linked_user: Callable[..., Any],
    json_lines: ParsedLines,
    settings: Any,
) -> None:
    kitsu = kitsu_at(sandbox_factory(users=1, entries=700))  # two pages of 500
    settings.KITSU_PAGES_IN_FLIGHT = 2  # the second one fetched ahead, in another thread
    user = linked_user("alice", sandbox=kitsu)
    before = len(json_lines())

    run = run_sync(user_id=user.pk, trigger="manual", full=True)

    assert run.outcome == "success", run.errors
    requests = lines_of(json_lines()[before:], "kitsu_sync.kitsu_api.transport")
    pages = [line for line in requests if "library-entries" in line["message"]]
    assert len(pages) == 2, requests  # the first page, and the second fetched ahead
    for line in requests:
        assert (line["user_id"], line["sync_run_id"]) == (user.pk, run.pk), line
    assert logcontext.current() == {}  # the ids end with the run


@pytest.mark.django_db
def test_a_deliverys_log_lines_carry_the_user_id(
    json_lines: ParsedLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deliver(*, user_id: int) -> outbox.Delivery:
        logging.getLogger("kitsu_sync.services.outbox").info("Sending the changes")
        return outbox.Delivery()

    monkeypatch.setattr(outbox, "deliver", deliver)
    tasks.deliver_outbox(42)

    [line] = lines_of(json_lines(), "kitsu_sync.services.outbox")
    assert line["user_id"] == 42
    assert logcontext.current() == {}


# --- secrets ------------------------------------------------------------------------------------

SECRETS = {
    "access": "acc-3f9a1b2c4d5e6f70",
    "refresh": "ref-8e7d6c5b4a392817",
    "password": "hunter2-correct-horse",
    "client": "cs-0a1b2c3d4e5f6a7b",
    "bearer": "bearer-5f4e3d2c1b0a9988",
    "api_key": "rvk_0123456789ab_QmFzZTY0LXVybC1zYWZlLXJhbmRvbS1rZXk",
    "url": "p4ss-in-url-77",
    "traceback": "tb-secret-6655443322",
}


def log_secrets_by_mistake() -> None:
    logger = logging.getLogger("kitsu_sync.oops")
    logger.warning(
        "Kitsu answered %s",
        {"access_token": SECRETS["access"], "refresh_token": SECRETS["refresh"]},
    )
    logger.info("POST /oauth/token grant_type=password&password=%s", SECRETS["password"])
    logger.info("Sending Authorization: Bearer %s", SECRETS["bearer"])
    logger.info("Webhook from %s", f"https://jellyfin.example.test/hook?key={SECRETS['api_key']}")
    logger.info("Key %s used", SECRETS["api_key"])
    logger.info("Dataset from https://mirror:%s@example.test/list.json", SECRETS["url"])
    logger.info("Linked", extra={"client_secret": SECRETS["client"], "kitsu_user": "demo"})
    try:
        raise ValueError(f"token={SECRETS['traceback']} was refused")
    except ValueError:
        logger.exception("The link failed")


def test_a_secret_logged_by_mistake_is_masked_in_json(json_lines: ParsedLines) -> None:
    log_secrets_by_mistake()

    lines = lines_of(json_lines(), "kitsu_sync.oops")
    assert len(lines) == 8
    text = json.dumps(lines)
    for what, secret in SECRETS.items():
        assert secret not in text, what
    assert MASK in lines[0]["message"]
    assert lines[4]["message"] == f"Key rvk_0123456789ab_{MASK} used"  # the public prefix stays
    assert lines[6]["client_secret"] == MASK
    assert lines[6]["kitsu_user"] == "demo"  # other extra fields are kept
    assert "ValueError" in lines[7]["exception"]


def test_the_plain_format_masks_secrets_too(
    log_output: Callable[[logging.Formatter], io.StringIO],
) -> None:
    stream = log_output(PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    log_secrets_by_mistake()
    text = stream.getvalue()
    assert "The link failed" in text
    for what, secret in SECRETS.items():
        assert secret not in text, what


def test_masking_leaves_ordinary_messages_alone(json_lines: ParsedLines) -> None:
    message = "Kitsu GET /library-entries -> 200 in 12 ms; refreshed the token of user 7"
    logging.getLogger("kitsu_sync.fine").info(message)
    assert lines_of(json_lines(), "kitsu_sync.fine")[0]["message"] == message


# --- configuration ------------------------------------------------------------------------------


def test_log_format_json_writes_one_json_object_per_line(tmp_path: Any) -> None:
    script = (
        "import logging\n"
        "logging.getLogger('kitsu_sync.test').warning('refresh_token=%s', 'ref-2718281828')\n"
    )
    env = production_env(tmp_path, LOG_FORMAT="json", DATABASE_URL="sqlite:///:memory:")
    result = manage(env, "shell", "--no-imports", "-c", script)
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["logger"] == "kitsu_sync.test"
    assert line["message"] == f"refresh_token={MASK}"


def test_log_format_is_plain_by_default_and_checked(tmp_path: Any) -> None:
    assert settings.LOG_FORMAT == "plain"  # tests/test.env does not set it
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "plain"
    result = manage(production_env(tmp_path, LOG_FORMAT="xml"), "check")
    assert result.returncode != 0
    assert "LOG_FORMAT='xml' is not one of: plain, json." in result.stderr


@pytest.mark.parametrize(
    "logged",
    [
        "{'password': \"it's a secret\"}",
        "{'password': 'hunter2 correct horse'}",
        "{'client_secret': 'sec ret'}",
        "grant_type=authorization_code&code=hunter2&code_verifier=hunter2",
    ],
)
def test_a_secret_with_spaces_or_quotes_is_masked_whole(logged: str) -> None:
    from revenge_site.logs import redact

    masked = redact(logged)

    assert MASK in masked
    for word in ("secret", "hunter2", "correct", "horse", "ret'"):
        assert word not in masked.replace("client_secret", ""), masked


def test_an_error_report_masks_a_secret_held_by_a_variable_of_another_name() -> None:
    from django.test import RequestFactory

    from revenge_site.reporting import SecretsFilter

    def send(body: str) -> None:
        raise ConnectionError("reset")

    try:
        send("grant_type=password&username=someone&password=pass-in-the-body")
    except ConnectionError as exc:
        frame = exc.__traceback__.tb_next.tb_frame

    cleansed = dict(SecretsFilter().get_traceback_frame_variables(RequestFactory().get("/"), frame))

    assert "pass-in-the-body" not in str(cleansed["body"])
    assert "username=someone" in str(cleansed["body"])
