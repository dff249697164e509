"""The BentoML service: ``bentoml serve service.bento:Driftwatch``.

This module is the entry point of each worker process: settings come from the
environment that ``driftwatch serve`` prepared (``Settings.to_env``).
"""

from __future__ import annotations

from driftwatch.settings import Settings

settings = Settings()
settings.apply_bentoml_home()

import bentoml  # noqa: E402 - BENTOML_HOME must be set first

from service import bentoml_fixes  # noqa: E402

bentoml_fixes.apply()  # before BentoML builds this worker's middleware stack

from models import registry  # noqa: E402
from service.app import create_app  # noqa: E402

app = create_app(settings, registry.load)


@bentoml.service(
    name="driftwatch",
    workers=settings.service_workers,
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
    # no spans for our routes unless asked for (DRIFTWATCH_SERVICE_TRACING); /metrics, /livez... keep BentoML's
    **({} if settings.service_tracing else {"tracing": {"excluded_urls": ["/predict", "/feedback", "/model"]}}),
    http={"port": settings.service_port},
)
@bentoml.asgi_app(app, path="/")
class Driftwatch:
    """Serves the production model: POST /predict, POST /feedback, GET /model."""
