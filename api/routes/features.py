from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api.core import mart
from api.deps import Authorized, DatabaseDep
from api.schemas import MAX_ID, MAX_OFFSET, FeaturesPage, Message, UserFeatures

router = APIRouter(prefix="/features", tags=["features"], dependencies=Authorized)

_NOT_READY = {503: {"model": Message, "description": "no run has published the mart yet"}}


def _read(fn, *args):
    try:
        return fn(*args)
    except mart.MartNotReady as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc


@router.get("", response_model=FeaturesPage, responses=_NOT_READY)
def list_features(
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> FeaturesPage:
    """The features mart, ordered by user_id."""
    items, total = _read(mart.read_features, db, limit, offset)
    return FeaturesPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{user_id}", response_model=UserFeatures, responses={404: {"model": Message}, **_NOT_READY})
def get_features(user_id: Annotated[int, Path(ge=-MAX_ID, le=MAX_ID)], db: DatabaseDep) -> UserFeatures:
    """One user's features."""
    row = _read(mart.read_feature, db, user_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"user {user_id} is not in the features mart")
    return row
