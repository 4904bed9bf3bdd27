"""API tokens: who may read (viewer) and who may also steer (operator) through the API.

A token is 32 random bytes, shown once when it is created; the store keeps only its
SHA-256, so a copy of the store lets no one in. A presented token is hashed and its
stored hash compared in constant time. Tokens are never logged: only their name and id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from cellops.store.tables import Tables

PREFIX = "cellops_"  # so a leaked token is recognisable (secret scanners)


class Role(StrEnum):
    VIEWER = "viewer"  # reads, the event stream, /metrics
    OPERATOR = "operator"  # and every write: pause, abort, rollback, approve ...

    def allows(self, needed: Role) -> bool:
        return self is Role.OPERATOR or needed is Role.VIEWER


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: Role
    created: float
    expires: float | None
    revoked: float | None

    def valid(self, now: float) -> bool:
        return self.revoked is None and (self.expires is None or now < self.expires)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenTables(Tables):
    def create_token(
        self, name: str, role: Role, now: float, expires: float | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token: its record, and the token itself (not kept anywhere)."""
        token = PREFIX + secrets.token_urlsafe(32)
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO tokens (name, role, hash, created, expires) VALUES (?, ?, ?, ?, ?)",
                (name, str(role), digest(token), now, expires),
            )
        record = TokenRecord(int(cursor.lastrowid or 0), name, role, now, expires, None)
        return record, token

    def tokens(self) -> list[TokenRecord]:
        return [_token(r) for r in self._all("SELECT * FROM tokens ORDER BY id")]

    def authenticate(self, token: str, now: float) -> TokenRecord | None:
        """The valid token `token` is, or None (unknown, revoked or expired)."""
        wanted = digest(token)
        rows = self._all("SELECT * FROM tokens WHERE hash = ?", wanted)
        if not rows or not hmac.compare_digest(str(rows[0]["hash"]), wanted):
            return None
        record = _token(rows[0])
        return record if record.valid(now) else None

    def revoke_token(self, key: str, now: float) -> list[TokenRecord]:
        """Revoke the tokens named `key` (or with that id); the ones revoked."""
        found = [t for t in self.tokens() if t.revoked is None and key in (t.name, str(t.id))]
        with self.transaction():
            for record in found:
                self._db.execute("UPDATE tokens SET revoked = ? WHERE id = ?", (now, record.id))
        return found


def _token(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=int(row["id"]),
        name=str(row["name"]),
        role=Role(row["role"]),
        created=float(row["created"]),
        expires=row["expires"],
        revoked=row["revoked"],
    )


def new_name() -> str:
    return f"token-{secrets.token_hex(3)}"
