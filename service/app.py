"""HTTP routes: /predict, /feedback, /model (a Starlette app BentoML mounts)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import inspect
import logging
import os
import signal
import threading
import time
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from driftwatch.settings import Settings
from driftwatch.store import Store, utcnow
from driftwatch.store.appender import appender_for
from service import metrics as M
from service import schemas as S
from service.batching import Batcher
from service.model import ModelSlot, Served
from service.requestlog import RequestLog
from service.spool import Spool
from service.validation import Problem, RequestError, check_content_type, feedback_labels, parse_json

log = logging.getLogger("driftwatch.service")


class LogUnavailable(Exception):
    """A request's rows could be neither committed nor spooled (the spool's disk failed): it is not answered 200."""


class ServiceState:
    """Everything one worker process holds; built once in the lifespan."""

    def __init__(self, settings: Settings, load_package):
        self.settings = settings
        self.store = Store(settings.database_url, timeout=settings.store_timeout_seconds)
        self.slot = ModelSlot(load_package, lambda: self.store.production(settings.model_name),
                              settings.max_instances, on_swap=self._on_swap)
        self.requestlog: RequestLog | None = None
        if settings.log_requests:
            self.requestlog = RequestLog(
                self.store, Spool(settings.spool_dir), max_batch=settings.commit_max_batch,
                retry_seconds=settings.spool_retry_seconds,
                on_stored=M.LOG_ROWS.inc, on_backlog=M.SPOOLED.set,
                appender=appender_for(self.store, timeout=settings.store_timeout_seconds) if settings.fast_log else None,
                timeout=settings.store_timeout_seconds,
                on_commit=lambda path, seconds: M.LOG_COMMIT.labels(path).observe(seconds))
        self.batcher = Batcher(lambda served, recs: served.predict(recs), settings.batch_max_size,
                               settings.batch_max_latency_ms, on_call=M.BATCH_SIZE.observe,
                               settle=self._log_call if self.requestlog is not None else None)

    async def _log_call(self, served: Served, requests: list[tuple[list, float]], preds: list,
                        probas: list | None) -> list[list[str] | BaseException]:
        """One model call's rows into the request log (one commit): each request's ids, or what failed it."""
        now, ts = time.perf_counter(), utcnow()
        ids = new_request_ids(len(preds))
        groups, out, i = [], [], 0
        name, version = served.name, served.version
        for records, t0 in requests:
            latency_ms = (now - t0) * 1000.0
            j = i + len(records)
            groups.append([{"request_id": ids[k], "ts": ts, "model_name": name, "model_version": version,
                            "features": records[k - i], "prediction": preds[k],
                            "probabilities": probas[k] if probas is not None else None, "latency_ms": latency_ms}
                           for k in range(i, j)])
            out.append(ids[i:j])
            i = j
        errors = await self.requestlog.write_many(groups)
        return [ids_ if e is None else LogUnavailable(str(e)) if isinstance(e, OSError) else e
                for ids_, e in zip(out, errors)]

    @staticmethod
    def _on_swap(old: Served | None, new: Served) -> None:
        if old is not None:
            M.MODEL_INFO.labels(old.name, old.version).set(0)
            M.MODEL_SWAPS.labels(new.name, new.version).inc()
        M.MODEL_INFO.labels(new.name, new.version).set(1)
        freeze_heap()


def freeze_heap() -> None:
    """Take everything alive now (frameworks, the model) out of the cyclic GC's reach.

    A full collection walks every tracked object: about 200 ms with BentoML,
    pandas and scikit-learn loaded, during which every request in flight
    stalls (it was the p99 under load). Frozen objects are still freed by
    reference counting; only garbage cycles among them are never collected.
    """
    gc.collect()
    gc.freeze()


_watchdog: threading.Thread | None = None


def exit_with_parent(every: float = 0.5, grace: float = 10.0) -> None:
    """Stop this worker process when the server process that started it dies.

    circus starts every BentoML worker with ``setsid()``, so a ``kill -9`` of
    the server's process group does not reach the workers: they would keep
    serving the port, unsupervised. SIGTERM first (uvicorn stops gracefully and
    the lifespan flushes the request log), a hard exit after ``grace`` seconds.
    """
    global _watchdog
    parent = os.getppid()
    if _watchdog is not None or parent <= 1:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        log.error("server process %d is gone: stopping worker %d", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(1)

    _watchdog = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    _watchdog.start()


async def read_json(request: Request, max_bytes: int) -> Any:
    check_content_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_big(max_bytes)
        chunks.append(chunk)
    return parse_json(b"".join(chunks))


def _too_big(max_bytes: int) -> RequestError:
    return RequestError([Problem("body", "body_too_large",
                                 f"request body exceeds {max_bytes} bytes; send smaller batches")], 413)


def new_request_ids(n: int) -> list[str]:
    """``n`` fresh request ids of 32 hex digits: the time in milliseconds (12 digits), then 80 random bits.

    Time first (as in UUIDv7), so the store's unique index on ``request_id`` grows at one end: a commit
    touches a few index pages instead of one random page per row (2-4x less work per row in SQLite once
    the table is large, less WAL). 80 random bits per millisecond keep ids unique across processes.

    >>> a, b = new_request_ids(2)
    >>> len(a) == len(b) == 32 and a != b and a[:12] == b[:12]
    True
    """
    prefix = format(time.time_ns() // 1_000_000, "012x")
    h = os.urandom(10 * n).hex()
    return [prefix + h[i:i + 20] for i in range(0, 20 * n, 20)]


class FastJSONResponse(JSONResponse):
    """Rendered by orjson: the same JSON values (floats may print shorter: 1e-6 for 1e-06), several times
    faster for large batches. A body that would hold a null, or that orjson cannot encode (integers beyond 64
    bits), goes through Starlette's encoder, which also refuses NaN and infinities as before (orjson would
    write them as null)."""

    def render(self, content: Any) -> bytes:
        try:
            out = orjson.dumps(content)
        except TypeError:
            return super().render(content)
        return super().render(content) if b"null" in out else out


def rejected(e: RequestError) -> JSONResponse:
    M.REJECTED.labels(e.reason).inc()
    return JSONResponse(e.body(), status_code=e.status)


async def predict(request: Request) -> JSONResponse:
    st: ServiceState = request.app.state.dw
    t0 = time.perf_counter()
    served = st.slot.current
    try:
        records = served.validator.check(await read_json(request, st.settings.max_body_bytes))
    except RequestError as e:
        return rejected(e)
    try:
        preds, probas, ids = await st.batcher.predict(served, records, t0)  # logged durably when ids come back
    except LogUnavailable as e:
        return JSONResponse({"error": "request_log_unavailable",
                             "detail": f"the request could not be logged durably ({e}); retry later"},
                            status_code=503, headers={"Retry-After": "5"})
    if ids is None:  # request log off
        ids = new_request_ids(len(records))
    classes = served.package.classes
    for p, n in (collections.Counter(preds) if classes is not None else {None: len(preds)}).items():
        M.PREDICTIONS.labels(served.name, served.version, M.predicted_label(p, classes)).inc(n)
    body: dict[str, Any] = {"predictions": preds, "request_ids": ids,
                            "model": {"name": served.name, "version": served.version}}
    if probas is not None:
        body["probabilities"] = probas
        body["classes"] = classes
    return FastJSONResponse(body)


async def feedback(request: Request) -> JSONResponse:
    st: ServiceState = request.app.state.dw
    try:
        labels = feedback_labels(await read_json(request, st.settings.max_body_bytes))
    except RequestError as e:
        return rejected(e)
    try:
        result = await asyncio.to_thread(st.store.add_feedback, labels)
    except Exception as e:  # noqa: BLE001 - store outage: nothing was acknowledged
        log.error("feedback not stored: %s", e)
        return JSONResponse({"error": "store_unavailable",
                             "detail": "labels were not stored (the store is unreachable); retry later"},
                            status_code=503, headers={"Retry-After": "5"})
    M.FEEDBACK_LABELS.inc(result.accepted)
    if result.conflicts:
        M.FEEDBACK_CONFLICTS.inc(len(result.conflicts))
    return JSONResponse({"accepted": result.accepted, "unknown": result.unknown, "conflicts": result.conflicts})


async def model_info(request: Request) -> JSONResponse:
    st: ServiceState = request.app.state.dw
    return JSONResponse(st.slot.current.package.describe())


ERRORS = {400: {"model": S.ErrorResponse, "description": "Malformed JSON"},
          413: {"model": S.ErrorResponse, "description": "Body too large"},
          415: {"model": S.ErrorResponse, "description": "Not application/json"},
          422: {"model": S.ErrorResponse, "description": "Invalid instances; every problem is listed"}}


def create_app(settings: Settings, load_package) -> FastAPI:
    """The routes plus a lifespan that loads the model and starts the request log."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        exit_with_parent()
        st = ServiceState(settings, load_package)
        await asyncio.to_thread(st.slot.refresh)
        if st.requestlog is not None:
            st.requestlog.start()
        app.state.dw = st
        poller = asyncio.get_running_loop().create_task(st.slot.poll(settings.model_poll_seconds))
        try:
            yield
        finally:
            poller.cancel()
            await st.batcher.close()
            if st.requestlog is not None:
                await st.requestlog.aclose()

    # FastAPI's own OpenTelemetry (newer FastAPI) would trace every request a second time: BentoML traces already
    quiet = {"telemetry": {"tracing": False, "metrics": False, "logs": False}} \
        if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
    app = FastAPI(title="driftwatch", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None, **quiet)
    app.add_api_route("/predict", predict, methods=["POST"], response_model=S.PredictResponse, responses=ERRORS,
                      openapi_extra=S.body(S.PredictRequest), summary="Predict instances and log them durably")
    app.add_api_route("/feedback", feedback, methods=["POST"], response_model=S.FeedbackResponse,
                      responses=ERRORS, openapi_extra=S.body(S.FeedbackRequest), summary="Send ground-truth labels")
    app.add_api_route("/model", model_info, methods=["GET"], summary="Describe the production model")
    app.add_api_route("/model", model_info, methods=["POST"], summary="Describe the production model (POST alias)",
                      operation_id="model_info_post", include_in_schema=False)
    # The routes above document the API (BentoML merges a FastAPI app's routes into its /docs.json). Requests are
    # served by plain Starlette routes placed first: the handlers read and validate bodies themselves and return
    # responses, so FastAPI's per-request dependency solving and response-model machinery would only add cost.
    app.router.routes[0:0] = [Route("/predict", predict, methods=["POST"]), Route("/feedback", feedback, methods=["POST"])]
    return app
