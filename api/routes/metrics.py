from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Authorized

router = APIRouter(tags=["metrics"], dependencies=Authorized)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics (text format): runs by status, run and step durations, last success, mart rows, an
    active run, and requests per route. Run metrics are read from the database at each scrape, so every API
    process on it reports the same. Needs the token when API_TOKEN is set (Prometheus: `authorization`)."""
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
