"""BentoML's request-timeout middleware leaves a live timer per request; ours cancels it and still answers 504."""

from __future__ import annotations

import asyncio
import gc

import pytest
import uvloop
from bentoml._internal.server.http import traffic

from service import bentoml_fixes
from service.bentoml_fixes import FixedTimeoutMiddleware

ORIGINAL = traffic.TimeoutMiddleware


async def ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def slow_app(scope, receive, send):
    await asyncio.sleep(5)


def live_timers() -> int:
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "TimerHandle")


async def serve(mw, n: int) -> list[dict]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    for _ in range(n):
        await mw({"type": "http"}, None, send)
    return sent


@pytest.mark.parametrize("cls, leaks", [(ORIGINAL, True), (FixedTimeoutMiddleware, False)])
def test_timers_left_behind_per_request(cls, leaks):
    async def main():
        before = live_timers()
        sent = await serve(cls(ok_app, timeout=60), 200)
        return live_timers() - before, sent

    left, sent = uvloop.run(main())  # the service's loop; still open when counting, so its timers are scheduled
    assert sum(m["type"] == "http.response.start" for m in sent) == 200
    if leaks:
        assert left >= 200, "the control: BentoML's own middleware keeps one timer per request"
    else:
        assert left <= 1, "none accumulate (the last request's cancelled handle may still be referenced)"


def test_a_request_that_starts_no_response_within_the_timeout_gets_504():
    async def main():
        return await serve(FixedTimeoutMiddleware(slow_app, timeout=0.05), 1)

    sent = asyncio.run(main())
    assert sent[0]["status"] == 504


def test_apply_swaps_the_middleware_bentoml_builds(monkeypatch):
    monkeypatch.setattr(traffic, "TimeoutMiddleware", ORIGINAL)
    assert bentoml_fixes.apply()
    assert traffic.TimeoutMiddleware is FixedTimeoutMiddleware
