"""OAuth state, as Doorkeeper 5.6 keeps it: access tokens, refresh tokens, grants, sessions.

Token strings come from `secrets` (never from the seeded data RNG): 32 random bytes,
urlsafe base64, 43 characters, like Doorkeeper's default generator.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

# Doorkeeper's authorization codes live for 10 minutes.
GRANT_LIFETIME = 600


def new_token() -> str:
    return secrets.token_urlsafe(32)


class AccessToken:
    __slots__ = (
        "client_id",
        "created_at",
        "expires_in",
        "refresh_token",
        "revoked_at",
        "scope",
        "token",
        "user_id",
    )

    def __init__(
        self, user_id: int, client_id: str | None, created_at: float, expires_in: int
    ) -> None:
        self.token = new_token()
        self.refresh_token = new_token()
        self.user_id = user_id
        self.client_id = client_id
        self.created_at = created_at
        self.expires_in = expires_in
        self.revoked_at: float | None = None
        self.scope = "public"

    def expired(self, now: float) -> bool:
        return now >= self.created_at + self.expires_in

    def remaining(self, now: float) -> int:
        return max(round(self.created_at + self.expires_in - now), 0)

    def accessible(self, now: float) -> bool:
        return self.revoked_at is None and not self.expired(now)


class Grant:
    """An authorization code (single use), with the PKCE challenge of its authorize request.

    Doorkeeper keeps `code_challenge` and `code_challenge_method` on `oauth_access_grants`
    when its PKCE migration has run; empty means the request carried no challenge.
    """

    __slots__ = (
        "client_id",
        "code",
        "code_challenge",
        "code_challenge_method",
        "created_at",
        "redirect_uri",
        "revoked",
        "scope",
        "user_id",
    )

    def __init__(
        self,
        user_id: int,
        client_id: str,
        redirect_uri: str,
        scope: str,
        created_at: float,
        code_challenge: str = "",
        code_challenge_method: str = "",
    ) -> None:
        self.code = new_token()
        self.user_id = user_id
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.created_at = created_at
        self.revoked = False
        self.code_challenge = code_challenge
        self.code_challenge_method = code_challenge_method if code_challenge else ""

    @property
    def uses_pkce(self) -> bool:
        return bool(self.code_challenge)

    def usable(self, now: float) -> bool:
        return not self.revoked and now < self.created_at + GRANT_LIFETIME


class TokenStore:
    """All OAuth state of one sandbox, behind one lock."""

    def __init__(self, clock: Callable[[], float], lifetime: int) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.lock = threading.RLock()
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.by_token: dict[str, AccessToken] = {}
            self.by_refresh: dict[str, AccessToken] = {}
            self.grants: dict[str, Grant] = {}
            # Browser sessions of the authorize page: session id -> (user id, CSRF token).
            self.sessions: dict[str, tuple[int, str]] = {}
            self.throttle: dict[tuple[str, int], int] = {}

    def issue(self, user_id: int, client_id: str | None) -> tuple[AccessToken, bool]:
        """A token for a password grant; (token, reused).

        Doorkeeper's `reuse_access_token`: a repeat login by the same user and client gets
        the newest still-valid token back, with a smaller expires_in.
        """
        now = self.clock()
        with self.lock:
            for token in reversed(list(self.by_token.values())):
                if (
                    token.user_id == user_id
                    and token.client_id == client_id
                    and token.revoked_at is None
                ):
                    if not token.expired(now):
                        return token, True
                    break
            return self._create(user_id, client_id, now), False

    def _create(self, user_id: int, client_id: str | None, now: float) -> AccessToken:
        token = AccessToken(user_id, client_id, now, self.lifetime)
        self.by_token[token.token] = token
        self.by_refresh[token.refresh_token] = token
        return token

    def create(self, user_id: int, client_id: str | None) -> AccessToken:
        with self.lock:
            return self._create(user_id, client_id, self.clock())

    def find(self, token: str) -> AccessToken | None:
        with self.lock:
            return self.by_token.get(token)

    def find_refresh(self, refresh_token: str) -> AccessToken | None:
        with self.lock:
            return self.by_refresh.get(refresh_token)

    def refresh(self, old: AccessToken) -> AccessToken | None:
        """Use a refresh token once: revoke the old pair and issue a new one.

        Returns None when the refresh token was already used or revoked (checked under the lock,
        so two concurrent refreshes with one token cannot both win).
        """
        with self.lock:
            if old.revoked_at is not None:
                return None
            now = self.clock()
            old.revoked_at = now
            return self._create(old.user_id, old.client_id, now)

    def revoke(self, token: AccessToken) -> None:
        with self.lock:
            if token.revoked_at is None:
                token.revoked_at = self.clock()

    def revoke_user(self, user_id: int) -> int:
        with self.lock:
            found = [
                t for t in self.by_token.values() if t.user_id == user_id and t.revoked_at is None
            ]
            for token in found:
                token.revoked_at = self.clock()
            return len(found)

    def expire_user(self, user_id: int) -> int:
        """Age every live token of a user past its lifetime (refresh tokens keep working)."""
        with self.lock:
            now = self.clock()
            found = [
                t for t in self.by_token.values() if t.user_id == user_id and t.accessible(now)
            ]
            for token in found:
                token.created_at = now - token.expires_in - 1
            return len(found)

    def create_grant(
        self,
        user_id: int,
        client_id: str,
        redirect_uri: str,
        scope: str,
        *,
        code_challenge: str = "",
        code_challenge_method: str = "",
    ) -> Grant:
        with self.lock:
            grant = Grant(
                user_id,
                client_id,
                redirect_uri,
                scope,
                self.clock(),
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
            )
            self.grants[grant.code] = grant
            return grant

    def find_grant(self, code: str) -> Grant | None:
        """The grant for a code, used or not, left as it is (Doorkeeper's `by_token`)."""
        with self.lock:
            return self.grants.get(code)

    def take_grant(self, code: str) -> Grant | None:
        """The grant for a code, revoked on the way out (codes are single use); None if unusable.

        Checked and revoked under the lock, so two exchanges of one code cannot both win.
        """
        with self.lock:
            grant = self.grants.get(code)
            if grant is None or grant.revoked:
                return None
            grant.revoked = True
            if self.clock() >= grant.created_at + GRANT_LIFETIME:
                return None
            return grant

    def start_session(self, user_id: int) -> str:
        with self.lock:
            session_id = new_token()
            self.sessions[session_id] = (user_id, new_token())
            return session_id

    def session(self, session_id: str | None) -> tuple[int, str] | None:
        if not session_id:
            return None
        with self.lock:
            return self.sessions.get(session_id)

    def count_login(self, client_ip: str, limit: int, period: int) -> bool:
        """Count one password grant from an IP; True when it is over the limit.

        Rack::Attack's throttle is a fixed window (`now / period`), and it counts the
        throttled requests too.
        """
        if limit <= 0:
            return False
        window = int(self.clock() // period)
        with self.lock:
            key = (client_ip, window)
            self.throttle[key] = self.throttle.get(key, 0) + 1
            stale = [k for k in self.throttle if k[1] < window]
            for old_key in stale:
                del self.throttle[old_key]
            return self.throttle[key] > limit

    def clear_throttle(self) -> None:
        with self.lock:
            self.throttle.clear()
