from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.core.mart import read as mart
from api.deps import Authorized, DatabaseDep
from api.schemas import MAX_ID, MAX_OFFSET, FeaturesPage, Message, UserFeatures

router = APIRouter(prefix="/features", tags=["features"], dependencies=Authorized)

_NOT_READY = {503: {"model": Message, "description": "no run has published the mart yet"}}
_CACHED = {304: {"description": "If-None-Match holds the current ETag: the mart has not changed"}}


def _read(fn, *args):
    try:
        return fn(*args)
    except mart.MartNotReady as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc


def _headers(version: mart.MartVersion) -> dict[str, str]:
    headers = {"ETag": version.etag, "Cache-Control": "no-cache"}
    if version.run_id is not None:
        headers["X-Mart-Run-Id"] = str(version.run_id)
    return headers


def _not_modified(request: Request, db) -> Response | None:
    """304 when If-None-Match names the published mart's current ETag."""
    wanted = request.headers.get("if-none-match")
    if not wanted:
        return None
    version = _read(mart.version, db)
    tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
    if version.etag in tags or "*" in tags:
        return Response(status_code=304, headers=_headers(version))
    return None


@router.get(
    "",
    response_model=FeaturesPage,
    responses={200: {"content": {"text/csv": {}}}, **_CACHED, **_NOT_READY},
)
def list_features(
    request: Request,
    response: Response,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    format: Annotated[
        Literal["json", "csv"], Query(description="csv: the whole mart as CSV (limit and offset do not apply)")
    ] = "json",
):
    """The features mart, ordered by user_id. `ETag` names the published build (send it back in
    `If-None-Match` to get `304` while it is unchanged); `X-Mart-Run-Id` names the run that built it.
    `?format=csv` streams every row as CSV (header row first), however many."""
    cached = _not_modified(request, db)
    if cached:
        return cached
    if format == "csv":
        version, chunks = _read(mart.stream_csv, db)
        return StreamingResponse(
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={**_headers(version), "Content-Disposition": 'attachment; filename="user_features.csv"'},
        )
    items, total, version = _read(mart.read_features_page, db, limit, offset)
    response.headers.update(_headers(version))
    return FeaturesPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{user_id}", response_model=UserFeatures, responses={404: {"model": Message}, **_CACHED, **_NOT_READY})
def get_features(
    user_id: Annotated[int, Path(ge=-MAX_ID, le=MAX_ID)], request: Request, response: Response, db: DatabaseDep
):
    """One user's features (with the same `ETag` and `X-Mart-Run-Id` as the list)."""
    cached = _not_modified(request, db)
    if cached:
        return cached
    row, version = _read(mart.read_feature_versioned, db, user_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"user {user_id} is not in the features mart")
    response.headers.update(_headers(version))
    return row
