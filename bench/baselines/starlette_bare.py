"""Baseline: a bare Starlette app on uvicorn with the same model (no validation, no logging).

    uvicorn bench.baselines.starlette_bare:app --port 3000 --no-access-log
"""

from __future__ import annotations

import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.baselines.common import predict as _predict
from bench.baselines.common import production_package

ESTIMATOR = production_package().estimator


async def predict(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(_predict(ESTIMATOR, pd.DataFrame(body["instances"])))


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
