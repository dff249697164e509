"""Two BentoML workers on one store: both serve, ids distinct, every row logged once, metrics summed."""

from __future__ import annotations

import pytest

from driftwatch.store import Store
from tests.helpers import prom
from tests.helpers.load import Load

pytestmark = pytest.mark.slow

# a gauge BentoML exports per worker process (multiprocess mode "all": one sample per pid)
PER_PID = "bentoml_service_last_request_timestamp_seconds"


def test_two_workers(service_factory, demo_model):
    svc = service_factory(workers=2)
    workers = set(svc.worker_pids())
    assert len(workers) == 2, svc.pids()
    store = Store(svc.database_url)

    # a new connection per request, so the kernel spreads them over both workers' accept()
    load = Load(svc.url, threads=10, max_batch=3, keepalive=False).start()
    try:
        load.wait_for(lambda l: len(l.ok) >= 150, 90, "150 successful requests")
        served_by = set()

        def both_served(_):
            served_by.update(int(p) for p in prom.label_values(svc.metrics(), PER_PID, "pid"))
            return len(served_by) >= 2

        load.wait_for(both_served, 60, "requests served by both workers")
    finally:
        load.stop()

    assert served_by == workers, "the two worker processes served the requests"
    assert load.statuses() == {200: len(load.results)}, load.summary()
    ids = load.ok_ids()
    assert len(ids) == len(set(ids)), "request ids are distinct across workers"
    assert store.count_predictions() == len(ids), "every row logged exactly once"
    assert store.request_ids() == set(ids)

    text = svc.metrics()
    assert prom.value(text, "driftwatch_request_log_rows_total") == len(ids), "summed over both workers"
    assert prom.value(text, "driftwatch_predictions_total", model=demo_model.name,
                      version=demo_model.version) == len(ids)
    assert prom.value(text, "driftwatch_request_log_spooled_rows") == 0
    assert prom.value(text, "driftwatch_model_info", model=demo_model.name, version=demo_model.version) == 1
    store.dispose()
