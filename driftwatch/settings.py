"""Settings: built once in the entry point and passed down.

Every field reads ``DRIFTWATCH_<NAME>`` from the environment; CLI flags
override. ``to_env`` turns settings back into environment variables so a
child process (``bentoml serve``, the monitor) rebuilds exactly the same ones.

>>> s = Settings(data_dir="/tmp/dw")
>>> s.database_url
'sqlite:////tmp/dw/driftwatch.db'
>>> s.service_url
'http://127.0.0.1:3000'
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All knobs of driftwatch, one object."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Everything local: SQLite, spool, reports.")
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite under data_dir.")
    model_name: str = Field(default="", description="Serve this model name; empty = latest production.")
    bentoml_home: Path | None = Field(default=None, description="BentoML model store; default data_dir/bentoml.")

    service_host: str = "127.0.0.1"
    service_port: int = 3000
    service_url: str = ""
    service_workers: int = 1
    service_tracing: bool = Field(default=False, description=(
        "BentoML OpenTelemetry spans for the API routes. Off by default: BentoML samples nothing unless tracing is "
        "configured (tracing.sample_rate, an exporter), yet builds a span for every request; turn it on with them."))
    monitor_host: str = "127.0.0.1"
    monitor_port: int = 3001
    monitor_url: str = ""

    # request limits
    max_instances: int = 1000
    max_body_bytes: int = 2_000_000

    # request log
    log_requests: bool = True
    commit_max_batch: int = 2048  # rows per request-log commit
    # commit fresh rows from the event loop (sqlite3 / psycopg async COPY) instead of a writer thread
    fast_log: bool = True
    spool_retry_seconds: float = 1.0
    store_timeout_seconds: float = 2.0
    model_poll_seconds: float = 1.0

    # adaptive batching of model calls: instances per call (1 = off); how long a call waits for more requests
    batch_max_size: int = 1024
    batch_max_latency_ms: float = 5.0

    # monitor
    monitor_interval_seconds: float = 10.0
    window_size: int = 1000
    window_seconds: float = 0.0
    window_min_rows: int = 100
    false_alarm_budget: float = 0.001
    calibration_resamples: int = 400

    # local stack (`driftwatch up`)
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    people_webhook_url: str = ""
    people_webhook_kind: str = "webhook"

    # alerts / retraining
    alert_token: str = ""
    retrain_cooldown_seconds: float = 600.0
    retrain_min_labeled_rows: int = 500
    retrain_wait_seconds: float = 3600.0
    retrain_poll_seconds: float = 30.0
    promote_margin: float = 0.01
    promote_max_original_drop: float = 0.05

    @model_validator(mode="after")
    def _defaults(self) -> "Settings":
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'driftwatch.db'}"
        if self.bentoml_home is None:
            self.bentoml_home = Path(os.environ.get("BENTOML_HOME") or self.data_dir / "bentoml")
        if not self.service_url:
            self.service_url = f"http://{self.service_host}:{self.service_port}"
        if not self.monitor_url:
            self.monitor_url = f"http://127.0.0.1:{self.monitor_port}"
        return self

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def calibration_dir(self) -> Path:
        return self.data_dir / "calibration"

    def to_env(self) -> dict[str, str]:
        """Environment for a child process that rebuilds these settings."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            env[f"DRIFTWATCH_{name.upper()}"] = str(value)
        env["BENTOML_HOME"] = str(self.bentoml_home)
        return env

    def apply_bentoml_home(self) -> None:
        """Point BentoML at our model store (must run before importing bentoml)."""
        os.environ["BENTOML_HOME"] = str(self.bentoml_home)
