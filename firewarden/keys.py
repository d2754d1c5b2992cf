"""API keys with roles.  A key is shown once when created; only its SHA-256 is stored
(keys are 256-bit random tokens, so a fast hash is enough), and every request looks it
up again, so a revocation takes effect at once in every process."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from firewarden.auth_tables import ApiKeyRow
from firewarden.database import utcnow

KEY_PREFIX = "fwk_"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    """Monitoring centre: alerts and duty checks."""
    INSTALLER = "installer"
    """Sites, devices, imports, pending devices."""
    VIEWER = "viewer"
    """Read-only."""


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str
    role: Role


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(session: AsyncSession, *, name: str, role: Role) -> tuple[ApiKeyRow, str]:
    """Returns the stored row and the key itself (shown once, never stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(name=name, role=role.value, key_hash=_hash(key), key_prefix=key[:12])
    session.add(row)
    await session.flush()
    return row, key


async def list_keys(session: AsyncSession) -> list[ApiKeyRow]:
    return list((await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))).all())


async def revoke_key(session: AsyncSession, key_id: int) -> bool:
    row = await session.get(ApiKeyRow, key_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return True


async def authenticate(session: AsyncSession, key: str) -> Principal | None:
    """The key's owner, or None for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == _hash(key)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        # Recorded at most once a minute: a busy console must not write on every request.
        await session.execute(update(ApiKeyRow).where(ApiKeyRow.id == row.id)
                              .values(last_used_at=now))
        await session.commit()
    return Principal(row.id, row.name, Role(row.role))
