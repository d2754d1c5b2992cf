"""API keys, for admins (also on the command line: `firewarden keys ...`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field

from dashboard_api.deps import Admin, RowId, SessionDep
from firewarden import keys
from firewarden.auth_tables import ApiKeyRow

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: keys.Role


class KeyPublic(BaseModel):
    id: int
    name: str
    role: keys.Role
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyCreated(KeyPublic):
    key: str
    """The key itself: shown this once, never stored."""


def _public(row: ApiKeyRow) -> KeyPublic:
    return KeyPublic.model_validate(row, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(request: KeyCreate, session: SessionDep, _: Admin) -> KeyCreated:
    row, key = await keys.create_key(session, name=request.name, role=request.role)
    await session.commit()
    return KeyCreated(**_public(row).model_dump(), key=key)


@router.get("")
async def list_keys(session: SessionDep, _: Admin) -> list[KeyPublic]:
    return [_public(r) for r in await keys.list_keys(session)]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: RowId, session: SessionDep, _: Admin) -> Response:
    if not await keys.revoke_key(session, key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no key {key_id}")
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
