"""Durability of the request log against a real service: crashes and database outages.

A 200 from /predict means its rows are committed (or fsynced to the spool and
shipped later). These tests count every 200 a client received and look for
each of its request ids in the store afterwards.
"""

from __future__ import annotations

import pytest

from driftwatch.store import Store
from service.spool import Spool
from tests.helpers import pg, prom
from tests.helpers.load import Load
from tests.helpers.proxy import TcpProxy
from tests.helpers.service import alive, wait_until

pytestmark = pytest.mark.slow


def crash_under_load(svc) -> Load:
    """Load with 10 clients, ``kill -9`` every process of the service in the middle of it."""
    load = Load(svc.url, threads=10, max_batch=3).start()
    try:
        load.wait_for(lambda l: len(l.ok) >= 120, 90, "successful requests before the crash")
        svc.kill9()
        load.wait_for(lambda l: any(r.status is None for r in l.results), 30, "requests failing after the crash")
    finally:
        load.stop()
    return load


def assert_nothing_lost(store: Store, load: Load) -> None:
    acknowledged = load.ok_ids()
    assert len(acknowledged) == len(set(acknowledged)), "request ids are unique"
    missing = set(acknowledged) - store.request_ids()
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged rows are not in the store"


def restart_and_check(svc, store: Store, load: Load) -> None:
    svc.restart()
    with svc.client() as c:
        r = c.post("/predict", json={"instances": [load_instance()]})
    assert r.status_code == 200, r.text
    assert_nothing_lost(store, load)
    assert r.json()["request_ids"][0] in store.request_ids()


def load_instance() -> dict:
    from tests.helpers.load import demo_instances
    return dict(demo_instances()[0])


def test_kill9_under_load_loses_nothing_sqlite(service_factory):
    svc = service_factory()
    store = Store(svc.database_url)
    load = crash_under_load(svc)
    assert_nothing_lost(store, load)  # committed before the 200: there already, before any restart
    restart_and_check(svc, store, load)

    # kill -9 of the server's process group only: circus put the workers in sessions of their own,
    # so they survive it; the workers notice that their server is gone and exit by themselves
    workers = svc.worker_pids()
    assert workers
    svc.kill9(tree=False)
    wait_until(lambda: not any(alive(p) for p in workers), 30, "orphaned workers to exit")
    store.dispose()


@pytest.mark.postgres
def test_kill9_under_load_loses_nothing_postgres(service_factory, pg_url):
    svc = service_factory(pg_url)
    store = Store(pg_url)
    load = crash_under_load(svc)
    assert_nothing_lost(store, load)
    restart_and_check(svc, store, load)
    store.dispose()


@pytest.mark.postgres
def test_postgres_unreachable_mid_load_rows_spool_then_arrive_once(service_factory):
    with pg.schema() as schema:
        proxy = TcpProxy(pg.PG_HOST, pg.PG_PORT).start()
        direct = Store(pg.url(schema))
        try:
            svc = service_factory(pg.url(schema, port=proxy.port), env={"DRIFTWATCH_SPOOL_RETRY_SECONDS": 0.3})
            load = Load(svc.url, threads=8, max_batch=3).start()
            try:
                load.wait_for(lambda l: len(l.ok) >= 60, 90, "traffic before the outage")
                assert direct.count_predictions() > 0

                proxy.cut()  # every connection reset, the port refuses new ones
                at_cut = len(load.results)
                load.wait_for(lambda l: len(l.ok) >= at_cut + 120, 90, "requests succeeding during the outage")
                spooled = wait_until(lambda: prom.value(svc.metrics(), "driftwatch_request_log_spooled_rows"),
                                     30, "driftwatch_request_log_spooled_rows > 0")
                assert spooled > 0
                missing_now = set(load.ok_ids()) - direct.request_ids()
                assert missing_now, "acknowledged during the outage, so they must be in the spool, not the store"

                proxy.restore()
                at_restore = len(load.results)
                wait_until(lambda: prom.value(svc.metrics(), "driftwatch_request_log_spooled_rows") == 0,
                           60, "the spool to be shipped")
                load.wait_for(lambda l: len(l.results) >= at_restore + 60, 90, "traffic after the outage")
            finally:
                load.stop()

            assert load.statuses() == {200: len(load.results)}, f"every request succeeded: {load.summary()}"
            acknowledged = load.ok_ids()
            wait_until(lambda: direct.count_predictions() >= len(acknowledged), 30, "every row in the store")
            assert direct.count_predictions() == len(acknowledged), "exactly once"
            assert direct.request_ids() == set(acknowledged)
            text = svc.metrics()
            assert prom.value(text, "driftwatch_request_log_spooled_rows") == 0
            assert prom.value(text, "driftwatch_request_log_rows_total") == len(acknowledged)
            assert Spool(svc.data_dir / "spool").backlog() == 0
            svc.kill9()
        finally:
            proxy.close()
            direct.dispose()


@pytest.mark.postgres
def test_crash_during_postgres_outage_spooled_rows_survive(service_factory):
    """The hardest case: rows acknowledged from the spool, then kill -9 before they were shipped.
    The restarted service finds the dead process's spool file and ships it."""
    with pg.schema() as schema:
        proxy = TcpProxy(pg.PG_HOST, pg.PG_PORT).start()
        direct = Store(pg.url(schema))
        try:
            svc = service_factory(pg.url(schema, port=proxy.port), env={"DRIFTWATCH_SPOOL_RETRY_SECONDS": 0.3})
            load = Load(svc.url, threads=8, max_batch=3).start()
            try:
                load.wait_for(lambda l: len(l.ok) >= 30, 90, "traffic before the outage")
                proxy.cut()
                at_cut = len(load.ok)
                load.wait_for(lambda l: len(l.ok) >= at_cut + 60, 90, "requests succeeding during the outage")
                svc.kill9()
            finally:
                load.stop()
            acknowledged = set(load.ok_ids())
            assert acknowledged - direct.request_ids(), "some acknowledged rows exist only in the spool"
            assert Spool(svc.data_dir / "spool").backlog() > 0

            proxy.restore()
            svc.restart()
            wait_until(lambda: acknowledged <= direct.request_ids(), 60, "the dead process's spool to be shipped")
            wait_until(lambda: Spool(svc.data_dir / "spool").backlog() == 0, 30, "the shipped spool file to be removed")
            assert prom.value(svc.metrics(), "driftwatch_request_log_spooled_rows") == 0
            svc.kill9()
        finally:
            proxy.close()
            direct.dispose()
