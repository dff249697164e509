"""Store tables (SQLAlchemy Core). Names and columns are a contract: see DESIGN.md."""

from __future__ import annotations

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text,
)

metadata = MetaData()

# BIGINT autoincrement on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")
Ts = DateTime(timezone=True)

# predictions.ts has no index: nothing queries by it (readers page by ``id``, which grows with ``ts``), and a third
# B-tree cost every logged row store work (a 16-row SQLite commit: 1.17x the CPU with it, bench/commit_cost.py).
# Databases created before keep their ix_predictions_ts; it does no harm.
predictions = Table(
    "predictions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False, unique=True),
    Column("ts", Ts, nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("features", JSON, nullable=False),
    Column("prediction", JSON, nullable=False),
    Column("probabilities", JSON),
    Column("latency_ms", Float),
)

feedback = Table(
    "feedback", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False, index=True),
    Column("label", JSON, nullable=False),
    Column("ts", Ts, nullable=False),
    Column("conflict", Boolean, nullable=False, default=False),
)

deployments = Table(
    "deployments", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ts", Ts, nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("previous_version", String(200)),
    Column("reason", Text, nullable=False, default=""),
    Column("actor", String(200), nullable=False, default=""),
)

monitor_runs = Table(
    "monitor_runs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ts", Ts, nullable=False, index=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("first_prediction_id", BigInteger),
    Column("last_prediction_id", BigInteger),
    Column("rows", Integer, nullable=False),
    Column("dataset_drift", Boolean),
    Column("drift_share", Float),
    Column("prediction_drift", Boolean),
    Column("concept_drift", Boolean),
    Column("duration_seconds", Float),
    Column("results", JSON, nullable=False),
    Column("report_path", Text),
)

monitor_state = Table(
    "monitor_state", metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("ts", Ts, nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ts", Ts, nullable=False),
    Column("fingerprint", String(64)),
    Column("alertname", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("severity", String(20)),
    Column("action", String(50)),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("starts_at", String(64)),
    Column("handled", String(200)),
)

retrains = Table(
    "retrains", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("started_at", Ts, nullable=False),
    Column("finished_at", Ts),
    Column("trigger", String(200), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("base_version", String(200)),
    Column("candidate_version", String(200)),
    Column("outcome", String(50), nullable=False),
    Column("reason", Text),
    Column("data", JSON),
    Column("metrics", JSON),
    Column("error_analysis", JSON),
)

Index("ix_feedback_request_ts", feedback.c.request_id, feedback.c.ts)
