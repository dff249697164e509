"""The store: request log, feedback, deployments, monitor history, alerts, retrains.

>>> s = Store("sqlite:///:memory:")
>>> s.create_all()
>>> s.insert_predictions([dict(request_id="a1", ts=utcnow(), model_name="m", model_version="v1",
...                            features={"x": 1.0}, prediction=1, probabilities=[0.2, 0.8], latency_ms=1.0)])
1
>>> s.add_feedback([("a1", 1), ("zz", 0)])
FeedbackResult(accepted=1, unknown=['zz'], conflicts=[])
>>> s.add_feedback([("a1", 0)]).conflicts
['a1']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from driftwatch.store import tables as T
from driftwatch.store.engine import make_engine, sqlite_synchronous

__all__ = ["Store", "Deployment", "FeedbackResult", "utcnow", "T"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def as_utc(ts: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Deployment:
    id: int
    ts: dt.datetime
    model_name: str
    model_version: str
    previous_version: str | None
    reason: str
    actor: str


@dataclass
class FeedbackResult:
    accepted: int = 0
    unknown: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


class _MultiRowInsert:
    """SQLite: a one-row INSERT as SQLAlchemy compiles it, its VALUES group repeated for n rows.

    ``statement(rows)`` returns the SQL (cached per row count) and the flat parameter tuple, each value
    converted by the column type's own bind processor (JSON serialisation, datetimes), as SQLAlchemy would.
    """

    def __init__(self, head: str, group: str, tail: str, columns: list[str], processors: list, max_params: int):
        self.head, self.group, self.tail = head, group, tail
        self.columns, self.processors = columns, processors
        self.column_set = frozenset(columns)
        self.chunk = max(1, max_params // len(columns))
        self._sql: dict[int, str] = {}

    @classmethod
    def build(cls, dialect, stmt, table) -> "_MultiRowInsert | None":
        columns = [c.name for c in table.c if not (c.primary_key and c.autoincrement)]
        compiled = stmt.compile(dialect=dialect, column_keys=columns, for_executemany=True)
        sql = str(compiled)
        group = "(" + ", ".join("?" * len(columns)) + ")"
        at = sql.find(f" VALUES {group}")
        if dialect.paramstyle != "qmark" or at < 0 or list(compiled.positiontup or []) != columns:
            return None  # not the statement this expects: executemany it is
        i = at + len(" VALUES ")
        processors = [table.c[c].type._cached_bind_processor(dialect) for c in columns]
        # SQLITE_MAX_VARIABLE_NUMBER: 32766 since SQLite 3.32, 999 before
        max_params = 32766 if dialect.dbapi.sqlite_version_info >= (3, 32) else 999
        return cls(sql[:i], group, sql[i + len(group):], columns, processors, max_params)

    def sql(self, n: int) -> str:
        """The statement for ``n`` rows (cached)."""
        sql = self._sql.get(n)
        if sql is None:
            sql = self._sql[n] = self.head + ", ".join([self.group] * n) + self.tail
        return sql

    def statement(self, rows: list[dict[str, Any]]) -> tuple[str, tuple]:
        sql = self.sql(len(rows))
        params = []
        for r in rows:
            for c, proc in zip(self.columns, self.processors):
                params.append(r[c] if proc is None else proc(r[c]))
        return sql, tuple(params)


class Store:
    """All reads and writes of driftwatch's tables go through here."""

    def __init__(self, url: str | Engine, *, timeout: float = 5.0):
        self.engine = url if isinstance(url, Engine) else make_engine(url, timeout=timeout)
        self.dialect = self.engine.dialect.name
        self.sqlite_synchronous = sqlite_synchronous(url) if isinstance(url, str) and self.dialect == "sqlite" \
            else "FULL"

    def create_all(self) -> None:
        T.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- request log ---------------------------------------------------------
    def _insert_ignore(self, table):
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=["request_id"])
        if self.dialect == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing(index_elements=["request_id"])
        return insert(table)

    def insert_predictions(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows in one transaction; rows whose request_id exists are skipped.

        On SQLite the rows go in as multi-row ``INSERT ... VALUES (...), (...)`` statements
        (SQL and value conversion exactly as SQLAlchemy compiles them for one row), not ``executemany``: the
        request-log writer then releases and re-takes the GIL a few times per commit instead of once per row,
        which matters when it shares a core with a busy event loop.
        """
        if not rows:
            return 0
        fast = self._multirow_insert()
        keys = rows[0].keys()
        if fast is None or keys != fast.column_set or any(r.keys() != keys for r in rows):
            with self.engine.begin() as conn:
                conn.execute(self._insert_ignore(T.predictions), rows)
            return len(rows)
        with self.engine.begin() as conn:
            for i in range(0, len(rows), fast.chunk):
                sql, params = fast.statement(rows[i:i + fast.chunk])
                conn.exec_driver_sql(sql, params)
        return len(rows)

    def _multirow_insert(self) -> "_MultiRowInsert | None":
        if not hasattr(self, "_multirow"):
            # SQLite only: psycopg converts the placeholders of long statements on every execute (it caches
            # short ones), and its executemany already sends all rows in one pipeline
            self._multirow = _MultiRowInsert.build(self.engine.dialect, self._insert_ignore(T.predictions),
                                                   T.predictions) if self.dialect == "sqlite" else None
        return self._multirow

    def count_predictions(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(T.predictions)).scalar_one()

    def request_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(T.predictions.c.request_id)).scalars())

    def max_prediction_id(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.coalesce(func.max(T.predictions.c.id), 0))).scalar_one()

    def read_predictions(self, after_id: int, limit: int = 10000) -> list[dict[str, Any]]:
        """Rows with id > after_id in id order, at most ``limit``."""
        p = T.predictions
        q = select(p).where(p.c.id > after_id).order_by(p.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- feedback ------------------------------------------------------------
    def add_feedback(self, labels: Iterable[tuple[str, Any]], ts: dt.datetime | None = None) -> FeedbackResult:
        """Record labels for known request ids; a label that disagrees with an earlier one is kept and flagged."""
        labels = list(labels)
        ts = ts or utcnow()
        out = FeedbackResult()
        ids = list({rid for rid, _ in labels})
        with self.engine.begin() as conn:
            known: set[str] = set()
            previous: dict[str, Any] = {}
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                known |= set(conn.execute(
                    select(T.predictions.c.request_id).where(T.predictions.c.request_id.in_(chunk))).scalars())
                for rid, label in conn.execute(
                        select(T.feedback.c.request_id, T.feedback.c.label)
                        .where(T.feedback.c.request_id.in_(chunk)).order_by(T.feedback.c.id)):
                    previous[rid] = label
            rows = []
            for rid, label in labels:
                if rid not in known:
                    out.unknown.append(rid)
                    continue
                conflict = rid in previous and previous[rid] != label
                if conflict:
                    out.conflicts.append(rid)
                previous[rid] = label
                rows.append({"request_id": rid, "label": label, "ts": ts, "conflict": conflict})
            if rows:
                conn.execute(insert(T.feedback), rows)
            out.accepted = len(rows)
        return out

    def latest_labels(self, request_ids: Iterable[str]) -> dict[str, tuple[Any, dt.datetime]]:
        """Latest label and its arrival time for each request id that has one."""
        ids = list(request_ids)
        out: dict[str, tuple[Any, dt.datetime]] = {}
        f = T.feedback
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 900):
                q = select(f.c.request_id, f.c.label, f.c.ts).where(
                    f.c.request_id.in_(ids[i:i + 900])).order_by(f.c.id)
                for rid, label, ts in conn.execute(q):
                    out[rid] = (label, as_utc(ts))
        return out

    def labeled_rows(self, limit: int = 50000, model_name: str = "") -> list[dict[str, Any]]:
        """Most recent predictions that have a label (latest label wins), oldest first."""
        p, f = T.predictions, T.feedback
        latest = select(f.c.request_id, func.max(f.c.id).label("fid")).group_by(f.c.request_id).subquery()
        q = (select(p.c.id, p.c.request_id, p.c.ts, p.c.model_name, p.c.model_version, p.c.features,
                    p.c.prediction, f.c.label, f.c.ts.label("label_ts"))
             .join(latest, latest.c.request_id == p.c.request_id)
             .join(f, f.c.id == latest.c.fid)
             .order_by(p.c.id.desc()).limit(limit))
        if model_name:
            q = q.where(p.c.model_name == model_name)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        return rows[::-1]

    def feedback_stats(self) -> dict[str, int]:
        f = T.feedback
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(f)).scalar_one()
            conflicts = conn.execute(select(func.count()).select_from(f).where(f.c.conflict)).scalar_one()
        return {"labels": total, "conflicts": conflicts}

    # -- deployments ---------------------------------------------------------
    def production(self, model_name: str = "") -> Deployment | None:
        d = T.deployments
        q = select(d).order_by(d.c.id.desc()).limit(1)
        if model_name:
            q = q.where(d.c.model_name == model_name)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return Deployment(**{**row._mapping, "ts": as_utc(row.ts)}) if row else None

    def deploy(self, model_name: str, model_version: str, *, reason: str, actor: str) -> Deployment:
        prev = self.production(model_name)
        with self.engine.begin() as conn:
            conn.execute(insert(T.deployments).values(
                ts=utcnow(), model_name=model_name, model_version=model_version,
                previous_version=prev.model_version if prev else None, reason=reason, actor=actor))
        return self.production(model_name)

    def deployments(self, model_name: str = "", limit: int = 50) -> list[Deployment]:
        d = T.deployments
        q = select(d).order_by(d.c.id.desc()).limit(limit)
        if model_name:
            q = q.where(d.c.model_name == model_name)
        with self.engine.connect() as conn:
            return [Deployment(**{**r._mapping, "ts": as_utc(r.ts)}) for r in conn.execute(q)]

    # -- monitor state and history -------------------------------------------
    def get_state(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            v = conn.execute(select(T.monitor_state.c.value).where(T.monitor_state.c.key == key)).first()
        return default if v is None else v[0]

    def set_state(self, key: str, value: Any, conn=None) -> None:
        s = T.monitor_state
        row = {"key": key, "value": value, "ts": utcnow()}
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(s).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value, "ts": row["ts"]})
        if conn is not None:
            conn.execute(stmt)
            return
        with self.engine.begin() as c:
            c.execute(stmt)

    def add_monitor_run(self, row: dict[str, Any], state: dict[str, Any] | None = None) -> int:
        """Record a window's results, and (same transaction) the checkpoint state."""
        with self.engine.begin() as conn:
            rid = conn.execute(insert(T.monitor_runs).values(**row).returning(T.monitor_runs.c.id)).scalar_one()
            for k, v in (state or {}).items():
                self.set_state(k, v, conn=conn)
        return rid

    def update_monitor_run(self, run_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(T.monitor_runs).where(T.monitor_runs.c.id == run_id).values(**values))

    def monitor_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        m = T.monitor_runs
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(m).order_by(m.c.id.desc()).limit(limit))]

    def monitor_run(self, run_id: int) -> dict[str, Any] | None:
        m = T.monitor_runs
        with self.engine.connect() as conn:
            r = conn.execute(select(m).where(m.c.id == run_id)).first()
        return dict(r._mapping) if r else None

    # -- alerts and retrains -------------------------------------------------
    def add_alert(self, row: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            return conn.execute(insert(T.alerts).values(ts=utcnow(), **row).returning(T.alerts.c.id)).scalar_one()

    def alert_recorded(self, fingerprint: str, starts_at: str, status: str) -> bool:
        """Whether this notification (same alert, same start, same status) was recorded already."""
        a = T.alerts
        q = select(a.c.id).where(a.c.fingerprint == fingerprint, a.c.starts_at == starts_at,
                                 a.c.status == status).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def alerts(self, limit: int = 50) -> list[dict[str, Any]]:
        a = T.alerts
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(a).order_by(a.c.id.desc()).limit(limit))]

    def add_retrain(self, row: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            return conn.execute(insert(T.retrains).values(**row).returning(T.retrains.c.id)).scalar_one()

    def update_retrain(self, retrain_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(T.retrains).where(T.retrains.c.id == retrain_id).values(**values))

    def retrain_counts(self) -> dict[tuple[str, str], int]:
        """Number of retrains by (model name, outcome), over the whole history."""
        r = T.retrains
        q = select(r.c.model_name, r.c.outcome, func.count()).group_by(r.c.model_name, r.c.outcome)
        with self.engine.connect() as conn:
            return {(m, o): n for m, o, n in conn.execute(q)}

    def retrains(self, limit: int = 20) -> list[dict[str, Any]]:
        r = T.retrains
        with self.engine.connect() as conn:
            return [dict(x._mapping) for x in conn.execute(select(r).order_by(r.c.id.desc()).limit(limit))]
