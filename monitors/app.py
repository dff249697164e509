"""The monitor's HTTP API (default port 3001): a Starlette app around a ``Monitor``.

``GET /metrics``, ``GET /status``, ``GET /reports/latest``, ``GET /reports/{run_id}``,
``GET /healthz``, ``POST /alerts``. The evaluation loop runs in a background
thread started and stopped by the app's lifespan (``run_loop=False`` in tests
that drive ``Monitor.step`` themselves).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from monitors.exporter import MonitorCollector
from monitors.runner import Monitor
from monitors.webhook import AlertReceiver, Trigger

if TYPE_CHECKING:
    from driftwatch.settings import Settings
    from driftwatch.store import Store


def status_body(monitor: Monitor) -> tuple[dict[str, Any], int]:
    snap = monitor.snapshot
    head = {"model": snap.model, "version": snap.version, "task": snap.task, "error": snap.error}
    if snap.model is None:
        return {**head, "error": "no_model",
                "detail": "no production model in the store yet: run `driftwatch train --demo` "
                          "(or train / import your own)"}, 404
    if snap.results is None:
        s = monitor.settings
        need = f"{min(s.window_min_rows, s.window_size)} rows" + (
            f" in the last {s.window_seconds:g} s" if s.window_seconds > 0 else "")
        return {**head, "error": "no_window",
                "detail": f"no window evaluated yet for {snap.model}:{snap.version}: the monitor needs {need} "
                          f"of this version (has {len(monitor.source.window.rows) if monitor.source.current else 0}); "
                          f"it checks every {s.monitor_interval_seconds:g} s",
                "baseline": snap.baseline}, 404
    return {**head, "run_id": snap.run_id, "baseline": snap.baseline, **snap.results}, 200


def build_monitor_app(settings: "Settings", store: "Store", monitor: Monitor, *,
                      trigger: Trigger | None = None, run_loop: bool = True) -> Starlette:
    """The monitor's app. ``trigger(alert_labels) -> dict`` starts a retrain (see ``monitors.webhook``)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MonitorCollector(lambda: monitor.snapshot))
    receiver = AlertReceiver(store, token=settings.alert_token, trigger=trigger)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def status(request: Request) -> JSONResponse:
        body, code = status_body(monitor)
        return JSONResponse(body, status_code=code)

    async def report(request: Request) -> Response:
        raw = request.path_params["run_id"]
        run_id = None
        if raw != "latest":
            try:
                run_id = int(raw)
            except ValueError:
                return JSONResponse({"error": "bad_run_id", "detail": f"{raw!r} is not a run id (an integer, or 'latest')"},
                                    status_code=400)
        path = await run_in_threadpool(monitor.report_path, run_id)
        if path is None:
            what = "no window has been evaluated yet" if run_id is None else f"there is no window with run id {run_id}"
            return JSONResponse({"error": "no_window", "detail": what}, status_code=404)
        return FileResponse(path, media_type="text/html; charset=utf-8")

    async def healthz(request: Request) -> JSONResponse:
        snap = monitor.snapshot
        return JSONResponse({"status": "ok", "model": snap.model, "version": snap.version, "last_run_id": snap.run_id,
                             "last_run_ts": snap.last_run_ts, "error": snap.error})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        loop = monitor.start_thread() if run_loop else None
        try:
            yield
        finally:
            if loop is not None:
                thread, stop = loop
                stop.set()
                await run_in_threadpool(thread.join, 30)

    app = Starlette(routes=[
        Route("/metrics", metrics),
        Route("/status", status),
        Route("/reports/{run_id}", report),
        Route("/healthz", healthz),
        Route("/alerts", receiver.endpoint, methods=["POST"]),
    ], lifespan=lifespan)
    app.state.monitor, app.state.registry = monitor, registry
    return app
