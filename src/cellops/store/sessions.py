"""The dashboard's sign-in sessions (a part of `SqliteStore`).

Signing in with a token makes a session: 32 random bytes that the browser keeps in its
cookie instead of the token, of which the store keeps only the SHA-256 and the token it
stands for. A session is valid while it has not expired or been ended (signing out) and
its token is valid: revoking a token ends its sessions at once, and it never outlives
the token's own expiry."""

from __future__ import annotations

import hmac
import secrets

from cellops.store.tables import Tables
from cellops.store.tokens import TokenRecord, _token, digest

SESSION_PREFIX = "cellops-session_"


class SessionTables(Tables):
    def create_session(self, token: TokenRecord, now: float, ttl: float) -> str:
        """A new session for `token`, valid for `ttl` seconds: the id for the cookie."""
        session = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = now + ttl if token.expires is None else min(now + ttl, token.expires)
        with self.transaction():
            self._db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            self._db.execute(
                "INSERT INTO sessions (hash, token, created, expires) VALUES (?, ?, ?, ?)",
                (digest(session), token.id, now, expires),
            )
        return session

    def session_token(self, session: str, now: float) -> TokenRecord | None:
        """The valid token a valid session stands for, or None."""
        wanted = digest(session)
        rows = self._all(
            "SELECT s.hash AS session_hash, s.expires AS session_expires, t.* FROM sessions s"
            " JOIN tokens t ON t.id = s.token WHERE s.hash = ?",
            wanted,
        )
        if not rows or not hmac.compare_digest(str(rows[0]["session_hash"]), wanted):
            return None
        if now >= float(rows[0]["session_expires"]):
            return None
        record = _token(rows[0])
        return record if record.valid(now) else None

    def end_session(self, session: str) -> None:
        self._run("DELETE FROM sessions WHERE hash = ?", digest(session))
