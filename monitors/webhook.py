"""``POST /alerts``: the Alertmanager webhook receiver (payload version 4).

Every alert of a notification is recorded in the ``alerts`` table. A firing
alert labelled ``action="retrain"`` calls the retrain trigger handed in by the
composition root, ``trigger(alert_labels) -> dict``, which owns the policy
(cool-down, minimum labeled rows) and must return promptly (start the work
in the background); it runs in a worker thread.

Alertmanager re-sends a firing alert every ``repeat_interval`` and delivers
from each replica of an HA pair: a notification whose (fingerprint,
startsAt, status) was already recorded is a duplicate, neither recorded nor
acted on again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from typing import Any, Callable

from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from driftwatch.store import Store

log = logging.getLogger("driftwatch.webhook")

Trigger = Callable[[dict[str, str]], dict[str, Any]]


class Alert(BaseModel):
    status: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class Notification(BaseModel):
    """Alertmanager's webhook body (``version`` "4")."""

    version: str = "4"
    status: str = ""
    receiver: str = ""
    groupKey: str = ""
    alerts: list[Alert]


class AlertReceiver:
    def __init__(self, store: Store, *, token: str = "", trigger: Trigger | None = None):
        self.store, self.token, self.trigger = store, token, trigger
        self._lock = threading.Lock()  # a duplicate check and its write are one step

    def authorized(self, header: str | None) -> bool:
        if not self.token:
            return True
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())

    def handle(self, note: Notification) -> dict[str, Any]:
        """Record and act on each alert; returns what was done, per alert."""
        done = []
        with self._lock:
            for a in note.alerts:
                fingerprint = a.fingerprint or _fingerprint(a.labels)
                name = a.labels.get("alertname", "")
                item: dict[str, Any] = {"alertname": name, "fingerprint": fingerprint, "status": a.status}
                if self.store.alert_recorded(fingerprint, a.startsAt, a.status):
                    item["handled"] = "duplicate"
                    done.append(item)
                    continue
                handled = "recorded"
                if a.status == "firing" and a.labels.get("action") == "retrain":
                    item["retrain"] = self._retrain(a.labels)
                    r = item["retrain"]
                    handled = "retrain: " + str(next((r[k] for k in ("retrain", "outcome", "status", "error") if r.get(k)),
                                                     "called"))
                item["id"] = self.store.add_alert({
                    "fingerprint": fingerprint, "alertname": name or "(unnamed)", "status": a.status,
                    "severity": a.labels.get("severity"), "action": a.labels.get("action"),
                    "labels": a.labels, "annotations": a.annotations, "starts_at": a.startsAt,
                    "handled": handled[:200]})
                item["handled"] = handled
                done.append(item)
        return {"received": len(note.alerts), "alerts": done}

    def _retrain(self, labels: dict[str, str]) -> dict[str, Any]:
        if self.trigger is None:
            return {"outcome": "skipped", "reason": "no retrain trigger configured in this monitor"}
        try:
            return dict(self.trigger(dict(labels)))
        except Exception as e:  # noqa: BLE001 - the alert is still recorded; the error is reported back
            log.exception("retrain trigger failed")
            return {"outcome": "error", "error": f"{type(e).__name__}: {e}"}

    async def endpoint(self, request: Request) -> JSONResponse:
        if not self.authorized(request.headers.get("authorization")):
            return JSONResponse({"error": "unauthorized",
                                 "detail": "send Authorization: Bearer <DRIFTWATCH_ALERT_TOKEN>"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            note = Notification.model_validate(json.loads(await request.body()))
        except (ValueError, ValidationError) as e:
            detail = e.errors(include_url=False) if isinstance(e, ValidationError) else str(e)
            return JSONResponse({"error": "bad_request",
                                 "detail": json.loads(json.dumps(detail, default=str))}, status_code=400)
        return JSONResponse(await run_in_threadpool(self.handle, note))


def _fingerprint(labels: dict[str, str]) -> str:
    """A stable id for an alert without Alertmanager's fingerprint (e.g. sent by hand)."""
    body = json.dumps(labels, sort_keys=True).encode()
    return hashlib.sha256(body).hexdigest()[:16]
