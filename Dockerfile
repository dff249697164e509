# syntax=docker/dockerfile:1
# driftwatch: one image for the service, the monitor and retraining.
#   docker build -t driftwatch .
#   docker run driftwatch serve | monitor | retrain | train --demo --if-missing | status
# The full stack: docker-compose.yml.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: wheels of driftwatch and every dependency ---------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY driftwatch ./driftwatch
COPY service ./service
COPY monitors ./monitors
COPY models ./models
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime: slim, non-root ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="driftwatch" \
      org.opencontainers.image.description="Serve a scikit-learn model with BentoML, watch it for drift, retrain."

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DRIFTWATCH_DATA_DIR=/data \
    BENTOML_HOME=/models \
    DRIFTWATCH_SERVICE_HOST=0.0.0.0 \
    DRIFTWATCH_MONITOR_HOST=0.0.0.0 \
    DRIFTWATCH_PROMETHEUS_DIR=/opt/driftwatch/prometheus

# Wheels are bind-mounted from the builder: they never become a layer here.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/driftwatch-*.whl \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/driftwatch driftwatch \
 && mkdir -p /data /models \
 && chown driftwatch:driftwatch /data /models

# Alert rules and Alertmanager config, rendered at start-up by driftwatch.stack_config.
COPY prometheus /opt/driftwatch/prometheus

USER 10001:10001
WORKDIR /home/driftwatch
VOLUME ["/data", "/models"]
EXPOSE 3000 3001

# The service answers /livez on 3000, the monitor /healthz on 3001: the role is
# read from PID 1's command line. One-shot roles (retrain, train) have no server:
# disable the check for them (docker-compose.yml does).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; m = b'monitor' in open('/proc/1/cmdline', 'rb').read().split(b'\\0'); p = os.environ.get('DRIFTWATCH_MONITOR_PORT' if m else 'DRIFTWATCH_SERVICE_PORT') or ('3001' if m else '3000'); u.urlopen('http://127.0.0.1:%s/%s' % (p, 'healthz' if m else 'livez'), timeout=4)"]

ENTRYPOINT ["driftwatch"]
CMD ["serve"]
