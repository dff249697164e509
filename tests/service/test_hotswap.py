"""Hot swap: ``driftwatch promote`` while load runs; no failed request, no mixed-up version."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace

import pytest

from driftwatch.store import Store
from tests.helpers import prom
from tests.helpers.load import Load
from tests.helpers.service import new_service, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def own_model_store(demo_model, tmp_path):
    """A copy of the session's model store: the version trained here must not appear in the shared one."""
    home = tmp_path / "model-store"
    shutil.copytree(demo_model.home / "models", home / "models", symlinks=True)
    return replace(demo_model, home=home)


def test_promote_under_load_swaps_every_response_consistently(own_model_store, tmp_path):
    model = own_model_store
    v1 = model.version
    svc = new_service(model, tmp_path / "svc", env={"DRIFTWATCH_MODEL_POLL_SECONDS": 0.5})
    store = Store(svc.database_url)
    try:
        svc.start(wait=False)  # it boots while the second version trains
        cli = dict(data_dir=svc.data_dir, bentoml_home=model.home, database_url=svc.database_url)
        out = run_cli(["train", "--demo", "--rows", "3000", "--seed", "7"], **cli, timeout=900).stdout
        svc.wait_ready()
        v2 = re.search(r"^stored \S+?:(\S+) \(", out, re.M).group(1)
        assert v2 != v1
        assert "production stays" in out and store.production().model_version == v1, "train does not promote"

        load = Load(svc.url, threads=8, max_batch=3).start()
        try:
            load.wait_for(lambda l: len(l.ok) >= 50, 90, "traffic on the old version")
            out = run_cli(["promote", v2], **cli).stdout
            assert f"{model.name}:{v2} (was {v1})" in out
            load.wait_for(lambda l: any(r.version == v2 for r in l.ok), 60, "a response from the new version")
            first_new = min(r.t_recv for r in load.ok if r.version == v2)
            load.wait_for(lambda l: sum(r.t_send > first_new for r in l.ok) >= 80, 90,
                          "traffic after the swap")
        finally:
            load.stop()

        assert load.statuses() == {200: len(load.results)}, f"no request failed: {load.summary()}"
        versions = [r.version for r in load.ok]
        assert set(versions) == {v1, v2}
        # one worker: once a response came from v2, every request sent after it is served by v2
        late_old = [r for r in load.ok if r.t_send > first_new and r.version != v2]
        assert not late_old, f"{len(late_old)} requests sent after the swap were answered by {v1}"

        logged = {row["request_id"]: row["model_version"] for row in store.read_predictions(0, limit=1_000_000)}
        for r in load.ok:
            assert {logged[i] for i in r.request_ids} == {r.version}, "the log records the version that answered"

        with svc.client() as c:
            assert c.get("/model").json()["version"] == v2
        text = svc.metrics()
        assert prom.value(text, "driftwatch_model_info", model=model.name, version=v2) == 1
        assert prom.value(text, "driftwatch_model_info", model=model.name, version=v1) == 0
    finally:
        svc.kill9()
        store.dispose()
