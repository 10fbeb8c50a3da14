"""The OAuth routes under /api/oauth, as Doorkeeper 5.6 answers them for Kitsu.

Grants: password (username is the email or the profile slug, never the display name) and
refresh_token; authorization_code only when the config enables it (kitsu.app does not), with
PKCE as Doorkeeper does it once its PKCE migration has run (docs/sandbox.md).
The password grant sits behind Rack::Attack's `logins/ip` throttle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from kitsu_sync.sandbox.store import SandboxStore
from kitsu_sync.sandbox.tokens import AccessToken

OAUTH = "/api/oauth"
SESSION_COOKIE = "_kitsu_sandbox_session"
RULES = [
    Rule(f"{OAUTH}/token", endpoint="token", methods=["POST"]),
    Rule(f"{OAUTH}/revoke", endpoint="revoke", methods=["POST"]),
    Rule(f"{OAUTH}/token/info", endpoint="token_info", methods=["GET"]),
    Rule(f"{OAUTH}/authorize", endpoint="authorize", methods=["GET"]),
    Rule(f"{OAUTH}/authorize", endpoint="authorize_decision", methods=["POST", "DELETE"]),
    Rule(f"{OAUTH}/sign_in", endpoint="sign_in", methods=["POST"]),
]

# Doorkeeper's English error descriptions; invalid_grant's is Kitsu's own locale text.
DESCRIPTIONS = {
    "invalid_grant": (
        "The provided authorization grant is invalid, expired, revoked, does not match the "
        "redirection URI used in the authorization request, or was issued to another client."
    ),
    "invalid_client": (
        "Client authentication failed due to unknown client, no client authentication "
        "included, or unsupported authentication method."
    ),
    "unsupported_grant_type": (
        "The authorization grant type is not supported by the authorization server."
    ),
    "invalid_scope": "The requested scope is invalid, unknown, or malformed.",
    "unauthorized_client": (
        "The client is not authorized to perform this request using this method."
    ),
    "access_denied": "The resource owner or authorization server denied the request.",
    "unsupported_response_type": ("The authorization server does not support this response type."),
    "invalid_redirect_uri": (
        "The requested redirect uri is malformed or doesn't match client redirect URI."
    ),
    "invalid_code_challenge_method": "The code challenge method must be plain or S256.",
}
STATUSES = {"invalid_client": 401, "unauthorized_client": 401}
SCOPES = {"public", "everything"}
# Doorkeeper 5.6 takes these two and no default: a challenge without a method is refused.
CODE_CHALLENGE_METHODS = ("plain", "S256")
JSON_TYPE = "application/json; charset=utf-8"


def oauth_error(code: str, description: str | None = None) -> Response:
    text = description or DESCRIPTIONS[code]
    body = json.dumps({"error": code, "error_description": text})
    header_text = text.replace('"', "'")
    return Response(
        body,
        status=STATUSES.get(code, 400),
        content_type=JSON_TYPE,
        headers={
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            "WWW-Authenticate": (
                f'Bearer realm="Kitsu", error="{code}", error_description="{header_text}"'
            ),
        },
    )


def missing(param: str) -> Response:
    return oauth_error("invalid_request", f"Missing required parameter: {param}.")


class OAuthApi:
    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.config = store.config

    def answer(self, request: Request, endpoint: str, values: dict[str, str]) -> Response:
        """The response of the endpoint the request was routed to."""
        return getattr(self, endpoint)(request, **values)

    # --- token endpoint ----------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        # Rack::Attack reads Rack's params (query and form body, not a JSON body).
        rack_grant = request.form.get("grant_type") or request.args.get("grant_type")
        if rack_grant == "password" and self.store.tokens.count_login(
            request.remote_addr or "unknown",
            self.config.login_throttle_limit,
            self.config.login_throttle_period,
        ):
            # Rack::Attack's default throttled response: plain text, and no Retry-After.
            return Response("Retry later\n", status=429, content_type="text/plain")
        params = request_params(request)
        grant_type = params.get("grant_type", "")
        if not grant_type:
            return missing("grant_type")
        client_id, client_secret = client_credentials(request, params)
        client: str | None = None
        if client_id:
            known = self.config.clients().get(client_id)
            if known is None or not hmac.compare_digest(known, client_secret or ""):
                return oauth_error("invalid_client")
            client = client_id
        scope = params.get("scope", "").strip()
        if scope and not set(scope.split()) <= SCOPES:
            return oauth_error("invalid_scope")
        if grant_type == "password":
            return self.password_grant(params, client)
        if grant_type == "refresh_token":
            return self.refresh_grant(params, client)
        if grant_type == "authorization_code" and self.config.auth_code_enabled:
            return self.code_grant(params, client)
        return oauth_error("unsupported_grant_type")

    def password_grant(self, params: dict[str, str], client: str | None) -> Response:
        user = self.store.user_by_login(params.get("username", ""))
        password = params.get("password", "")
        if user is None or not hmac.compare_digest(
            user.password.encode("utf-8"), password.encode("utf-8")
        ):
            return oauth_error("invalid_grant")
        token, _reused = self.store.tokens.issue(user.id, client)
        return self.token_response(token)

    def refresh_grant(self, params: dict[str, str], client: str | None) -> Response:
        refresh_token = params.get("refresh_token", "")
        if not refresh_token:
            return missing("refresh_token")
        old = self.store.tokens.find_refresh(refresh_token)
        if old is None or old.revoked_at is not None:
            return oauth_error("invalid_grant")
        # Doorkeeper validate_client_match: a token issued to a client needs that client back.
        if old.client_id is not None and old.client_id != client:
            return oauth_error("invalid_grant")
        new = self.store.tokens.refresh(old)
        if new is None:
            return oauth_error("invalid_grant")
        return self.token_response(new)

    def code_grant(self, params: dict[str, str], client: str | None) -> Response:
        """Doorkeeper's AuthorizationCodeRequest: its checks in its order, and the code used up
        only by a successful exchange (a refused one leaves it to its owner)."""
        if not params.get("code"):
            return missing("code")
        tokens = self.store.tokens
        grant = tokens.find_grant(params["code"])
        verifier = params.get("code_verifier", "")
        if grant is not None and grant.uses_pkce and not verifier:
            return missing("code_verifier")
        if not params.get("redirect_uri"):
            return missing("redirect_uri")
        if client is None:
            return oauth_error("invalid_client")
        if grant is None or grant.client_id != client or not grant.usable(self.config.clock()):
            return oauth_error("invalid_grant")
        if grant.redirect_uri != params["redirect_uri"]:
            return oauth_error("invalid_grant")
        if verifier and not verifier_matches(
            grant.code_challenge_method, grant.code_challenge, verifier
        ):
            return oauth_error("invalid_grant")
        # Another exchange of the same code may have won since the checks above.
        if tokens.take_grant(grant.code) is None:
            return oauth_error("invalid_grant")
        return self.token_response(tokens.create(grant.user_id, client))

    def token_response(self, token: AccessToken) -> Response:
        now = self.config.clock()
        body = {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": token.remaining(now),
            "refresh_token": token.refresh_token,
            "scope": token.scope,
            "created_at": int(token.created_at),
        }
        return Response(
            json.dumps(body),
            content_type=JSON_TYPE,
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    # --- revoke and introspection ------------------------------------------------------------

    def revoke(self, request: Request) -> Response:
        params = request_params(request)
        tokens = self.store.tokens
        value = params.get("token", "")
        token = tokens.find(value) or tokens.find_refresh(value)
        # RFC 7009: an unknown token is not an error.
        if token is not None:
            client_id, client_secret = client_credentials(request, params)
            known = self.config.clients().get(client_id or "")
            authenticated = known is not None and hmac.compare_digest(known, client_secret or "")
            if token.client_id is not None and not (authenticated and client_id == token.client_id):
                return Response(
                    json.dumps(
                        {
                            "error": "unauthorized_client",
                            "error_description": "You are not authorized to revoke this token",
                        }
                    ),
                    status=403,
                    content_type=JSON_TYPE,
                )
            tokens.revoke(token)
        return Response("{}", content_type=JSON_TYPE)

    def token_info(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        raw = value.strip() if scheme.lower() == "bearer" else request.args.get("access_token")
        token = self.store.tokens.find(raw or "")
        now = self.config.clock()
        if token is None or not token.accessible(now):
            if token is not None and token.revoked_at is not None:
                description = "The access token was revoked"
            elif token is not None:
                description = "The access token expired"
            else:
                description = "The access token is invalid"
            response = oauth_error("invalid_token", description)
            response.status_code = 401
            return response
        return Response(
            json.dumps(
                {
                    "resource_owner_id": token.user_id,
                    "scope": [token.scope],
                    "expires_in": token.remaining(now),
                    "application": {"uid": token.client_id},
                    "created_at": int(token.created_at),
                }
            ),
            content_type=JSON_TYPE,
        )

    # --- authorize page ----------------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        params = {k: v for k, v in request.args.items()}
        problem = self.authorization_problem(params)
        if problem is not None:
            return problem
        session = self.store.tokens.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return_to = request.full_path if request.query_string else request.path
            return html_page("Sign in to Kitsu", login_form(return_to, None))
        user = self.store.user_by_id(session[0])
        assert user is not None
        return html_page("Authorize application", consent_form(params, user.name, session[1]))

    def authorize_decision(self, request: Request) -> Response:
        form = {k: v for k, v in request.form.items()}
        session = self.store.tokens.session(request.cookies.get(SESSION_COOKIE))
        if session is None or not hmac.compare_digest(
            session[1], form.get("authenticity_token", "")
        ):
            return html_page(
                "Session expired",
                "<p>Your sign-in session is missing or expired. Start again from the app.</p>",
                status=422,
            )
        problem = self.authorization_problem(form)
        if problem is not None:
            return problem
        deny = request.method == "DELETE" or form.get("_method", "").lower() == "delete"
        redirect_uri = form["redirect_uri"]
        if deny:
            answer = {"error": "access_denied", "error_description": DESCRIPTIONS["access_denied"]}
        else:
            grant = self.store.tokens.create_grant(
                session[0],
                form["client_id"],
                redirect_uri,
                form.get("scope") or "public",
                code_challenge=form.get("code_challenge", ""),
                code_challenge_method=form.get("code_challenge_method", ""),
            )
            answer = {"code": grant.code}
        if form.get("state"):
            answer["state"] = form["state"]
        return redirect(with_query(redirect_uri, answer))

    def sign_in(self, request: Request) -> Response:
        form = request.form
        return_to = form.get("return_to", "")
        if not return_to.startswith(f"{OAUTH}/authorize"):
            return_to = f"{OAUTH}/authorize"
        user = self.store.user_by_login(form.get("username", ""))
        password = form.get("password", "")
        if user is None or not hmac.compare_digest(
            user.password.encode("utf-8"), password.encode("utf-8")
        ):
            message = (
                "Wrong email, profile slug or password. Sign in with your email or the name in "
                "your profile URL, not your display name."
            )
            return html_page("Sign in to Kitsu", login_form(return_to, message), status=401)
        response = redirect(return_to, 303)
        response.set_cookie(
            SESSION_COOKIE,
            self.store.tokens.start_session(user.id),
            path=OAUTH,
            httponly=True,
            samesite="Lax",
        )
        return response

    def authorization_problem(self, params: dict[str, str]) -> Response | None:
        """Why an authorization request cannot go ahead, as a page or redirect; None if it can."""
        if not self.config.auth_code_enabled:
            # kitsu.app mounts the route, but no code or implicit flow is enabled.
            return error_page("unsupported_response_type", 400)
        client_id = params.get("client_id", "")
        if not client_id:
            return error_page("invalid_request", 400, "Missing required parameter: client_id.")
        if client_id not in self.config.clients():
            return error_page("invalid_client", 401)
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        allowed = self.config.redirect_uris
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return error_page("invalid_redirect_uri", 400)
        if allowed and redirect_uri not in allowed:
            return error_page("invalid_redirect_uri", 400)
        if params.get("response_type") != "code":
            return redirect_error(redirect_uri, "unsupported_response_type", params)
        scope = params.get("scope", "").strip()
        if scope and not set(scope.split()) <= SCOPES:
            return redirect_error(redirect_uri, "invalid_scope", params)
        if params.get("code_challenge") and (
            params.get("code_challenge_method") not in CODE_CHALLENGE_METHODS
        ):
            return redirect_error(redirect_uri, "invalid_code_challenge_method", params)
        return None


def verifier_matches(method: str, challenge: str, verifier: str) -> bool:
    """Doorkeeper's `validate_code_verifier` once a verifier was sent: S256 compares the
    unpadded base64url SHA-256 of the verifier, plain the verifier itself; a grant without
    a challenge (no method) matches no verifier."""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("utf-8")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    elif method == "plain":
        expected = verifier
    else:
        return False
    return hmac.compare_digest(challenge.encode("utf-8"), expected.encode("utf-8"))


def redirect_error(redirect_uri: str, code: str, params: dict[str, str]) -> Response:
    """Back to the client with an error and its description, and the state if one came."""
    answer = {"error": code, "error_description": DESCRIPTIONS[code]}
    if params.get("state"):
        answer["state"] = params["state"]
    return redirect(with_query(redirect_uri, answer))


def request_params(request: Request) -> dict[str, str]:
    """Rails params: the query string, then the body (form or JSON) on top."""
    params = {k: v for k, v in request.args.items()}
    if request.mimetype == "application/json":
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            body = {}
        if isinstance(body, dict):
            params.update({str(k): "" if v is None else str(v) for k, v in body.items()})
    else:
        params.update({k: v for k, v in request.form.items()})
    return params


def client_credentials(request: Request, params: dict[str, str]) -> tuple[str | None, str | None]:
    """HTTP Basic first (Doorkeeper's from_basic), then client_id/client_secret params."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, _, secret = decoded.partition(":")
        return client_id or None, secret
    return params.get("client_id") or None, params.get("client_secret")


def with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def redirect(location: str, status: int = 302) -> Response:
    response = Response("", status=status, content_type="text/html; charset=utf-8")
    response.headers["Location"] = location
    response.autocorrect_location_header = False
    return response


def html_page(title: str, body: str, status: int = 200) -> Response:
    page = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{escape(title)} · Kitsu sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem}}
button{{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}}.error{{color:#a00}}</style></head>
<body><h1>{escape(title)}</h1>
{body}
<p><small>This is the local Kitsu sandbox, not kitsu.app.</small></p>
</body></html>
"""
    return Response(page, status=status, content_type="text/html; charset=utf-8")


def error_page(code: str, status: int, description: str | None = None) -> Response:
    text = description or DESCRIPTIONS.get(code, code)
    return html_page(
        "An error has occurred",
        f'<p class="error" id="error" data-error="{escape(code)}">{escape(text)}</p>',
        status=status,
    )


def login_form(return_to: str, message: str | None) -> str:
    error = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    return f"""{error}
<form method="post" action="{OAUTH}/sign_in">
<input type="hidden" name="return_to" value="{escape(return_to)}">
<label for="username">Email or profile slug</label>
<input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>"""


def consent_form(params: dict[str, str], user_name: str, csrf: str) -> str:
    fields: dict[str, Any] = {
        "client_id": params.get("client_id", ""),
        "redirect_uri": params.get("redirect_uri", ""),
        "state": params.get("state", ""),
        "response_type": params.get("response_type", ""),
        "scope": params.get("scope", ""),
        # Doorkeeper's authorize form carries the PKCE pair on to the grant it creates.
        "code_challenge": params.get("code_challenge", ""),
        "code_challenge_method": params.get("code_challenge_method", ""),
        "authenticity_token": csrf,
    }
    hidden = "\n".join(
        f'<input type="hidden" name="{name}" value="{escape(str(value))}">'
        for name, value in fields.items()
    )
    return f"""<p>Signed in as <strong>{escape(user_name)}</strong>.</p>
<p>Authorize <strong>{escape(fields["client_id"])}</strong> to use your Kitsu account?</p>
<form method="post" action="{OAUTH}/authorize" style="display:inline">
{hidden}
<button type="submit" name="commit" value="Authorize">Authorize</button>
</form>
<form method="post" action="{OAUTH}/authorize" style="display:inline">
<input type="hidden" name="_method" value="delete">
{hidden}
<button type="submit" name="commit" value="Deny">Deny</button>
</form>"""
