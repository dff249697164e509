"""A fix for BentoML 1.4's request-timeout middleware, applied before a worker builds its ASGI app.

BentoML wraps every request in ``TimeoutMiddleware``, which schedules
``loop.call_later(timeout, ...)`` (60 s here) and never cancels it. Each
request therefore leaves a live timer, its future, context and callback
behind for a minute: at 1,500 requests/s about 90,000 timers, half a million
objects that every full garbage collection walks (measured: gen-2 collections
grew from 12 to 60 ms within 15 s of load, every 1-2 s; they were the p99).
``FixedTimeoutMiddleware`` behaves the same (504 if no response has started
within the timeout) and cancels its timer when the request ends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.responses import JSONResponse

log = logging.getLogger("driftwatch.service")


class FixedTimeoutMiddleware:
    """BentoML's ``TimeoutMiddleware`` with its timer cancelled at the end of the request."""

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    @staticmethod
    def _set_timer_out(waiter: asyncio.Future) -> None:
        if not waiter.done():
            waiter.set_exception(asyncio.TimeoutError)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def _send(message: dict) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
        try:
            await waiter
        except TimeoutError:
            if fut.cancel():
                resp = JSONResponse({"error": f"Not able to process the request in {self.timeout} seconds"},
                                    status_code=504)
                await resp(scope, receive, send)
        else:
            await fut
        finally:
            timer.cancel()


def apply() -> bool:
    """Swap the fixed middleware in; False (and a warning) if this BentoML has no such middleware any more."""
    try:
        from bentoml._internal.server.http import traffic
    except ImportError:
        traffic = None
    if traffic is None or not hasattr(traffic, "TimeoutMiddleware"):
        log.warning("BentoML's TimeoutMiddleware not found: its timer fix is not applied")
        return False
    traffic.TimeoutMiddleware = FixedTimeoutMiddleware
    return True
