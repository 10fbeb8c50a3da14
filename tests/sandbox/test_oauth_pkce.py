"""PKCE (RFC 7636) in the sandbox's authorization-code flow, as Doorkeeper 5.6 checks it once its
PKCE migration has run: the challenge rides on the grant, and the token request must prove it."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from tests.web_support import KitsuAuthorizePage, callback_query

REDIRECT_URI = "http://revenge.test/accounts/kitsu/login/callback/"
# RFC 7636 Appendix B: a verifier and its S256 challenge.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)


def authorize_url(sandbox, **pkce: str) -> str:
    query = {
        "client_id": sandbox.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "state": "st4te-xyz",
        **pkce,
    }
    return f"{sandbox.oauth_url}/authorize?{urlencode(query)}"


def approved_code(sandbox, **pkce: str) -> str:
    """Sign in as the demo user, approve, and return the code sent back to the client."""
    back = KitsuAuthorizePage(sandbox).decide(authorize_url(sandbox, **pkce))
    return callback_query(back)["code"]


def exchange(sandbox, code: str, **extra: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        **extra,
    }
    return requests.post(f"{sandbox.oauth_url}/token", data=form, timeout=10)


def assert_oauth_error(response: requests.Response, error: str, description: str) -> None:
    """Doorkeeper's error answer: 400, the JSON pair, and the same pair in WWW-Authenticate."""
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {"error": error, "error_description": description}
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="Kitsu", error="{error}"')


@pytest.mark.parametrize(
    ("method", "challenge", "verifier"),
    [("S256", RFC_CHALLENGE, RFC_VERIFIER), ("plain", RFC_VERIFIER, RFC_VERIFIER)],
)
def test_the_matching_verifier_buys_a_token_once(sandbox, method, challenge, verifier):
    code = approved_code(sandbox, code_challenge=challenge, code_challenge_method=method)
    grant = sandbox.store.tokens.find_grant(code)
    assert (grant.code_challenge, grant.code_challenge_method) == (challenge, method)

    token = exchange(sandbox, code, code_verifier=verifier)

    assert token.status_code == 200, token.text
    assert token.json()["token_type"] == "Bearer"
    replay = exchange(sandbox, code, code_verifier=verifier)
    assert_oauth_error(replay, "invalid_grant", INVALID_GRANT)


def test_a_challenged_code_without_a_verifier_is_a_missing_parameter(sandbox):
    code = approved_code(sandbox, code_challenge=RFC_CHALLENGE, code_challenge_method="S256")

    refused = exchange(sandbox, code)

    # Doorkeeper's validate_params: invalid_request before any other check.
    assert_oauth_error(refused, "invalid_request", "Missing required parameter: code_verifier.")
    # A refused exchange does not use the code up (Doorkeeper revokes it only on success).
    assert exchange(sandbox, code, code_verifier=RFC_VERIFIER).status_code == 200


@pytest.mark.parametrize(
    "verifier",
    [RFC_CHALLENGE, RFC_VERIFIER + "x", RFC_VERIFIER.lower()],
    ids=["the challenge itself", "one character more", "another case"],
)
def test_a_wrong_verifier_is_invalid_grant_and_leaves_the_code_to_its_owner(sandbox, verifier):
    code = approved_code(sandbox, code_challenge=RFC_CHALLENGE, code_challenge_method="S256")

    refused = exchange(sandbox, code, code_verifier=verifier)

    assert_oauth_error(refused, "invalid_grant", INVALID_GRANT)
    assert exchange(sandbox, code, code_verifier=RFC_VERIFIER).status_code == 200


def test_a_plain_challenge_is_not_checked_as_s256(sandbox):
    code = approved_code(sandbox, code_challenge=RFC_CHALLENGE, code_challenge_method="plain")

    # The S256 verifier of that string is not the string itself.
    assert exchange(sandbox, code, code_verifier=RFC_VERIFIER).json()["error"] == "invalid_grant"
    assert exchange(sandbox, code, code_verifier=RFC_CHALLENGE).status_code == 200


def test_without_a_challenge_no_verifier_is_needed_and_none_is_accepted(sandbox):
    first, second = approved_code(sandbox), approved_code(sandbox)
    assert not sandbox.store.tokens.find_grant(first).uses_pkce

    assert exchange(sandbox, first).status_code == 200
    # Doorkeeper's validate_code_verifier: a verifier for a grant without a challenge
    # matches nothing.
    assert_oauth_error(
        exchange(sandbox, second, code_verifier=RFC_VERIFIER), "invalid_grant", INVALID_GRANT
    )


def test_the_verifier_is_checked_after_the_client_and_the_redirect_uri(sandbox):
    code = approved_code(sandbox, code_challenge=RFC_CHALLENGE, code_challenge_method="S256")

    wrong_uri = exchange(
        sandbox, code, code_verifier=RFC_VERIFIER, redirect_uri="http://evil.test/"
    )
    no_client = exchange(sandbox, code, code_verifier=RFC_VERIFIER, client_id="", client_secret="")

    assert wrong_uri.json()["error"] == "invalid_grant"
    assert (no_client.status_code, no_client.json()["error"]) == (401, "invalid_client")
    assert exchange(sandbox, code, code_verifier=RFC_VERIFIER).status_code == 200


@pytest.mark.parametrize("method", [None, "", "s256", "S512"])
def test_a_challenge_needs_a_method_doorkeeper_knows(sandbox, method):
    pkce = {"code_challenge": RFC_CHALLENGE}
    if method is not None:
        pkce["code_challenge_method"] = method

    answer = requests.get(authorize_url(sandbox, **pkce), allow_redirects=False, timeout=10)

    # Doorkeeper 5.6 has no default method: it redirects back with its own error name.
    assert answer.status_code == 302
    back = callback_query(answer.headers["Location"])
    assert back == {
        "error": "invalid_code_challenge_method",
        "error_description": "The code challenge method must be plain or S256.",
        "state": "st4te-xyz",
    }
    assert answer.headers["Location"].startswith(REDIRECT_URI)
