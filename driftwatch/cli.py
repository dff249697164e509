"""``driftwatch`` — the command line, and the composition root.

Settings are built once here (environment ``DRIFTWATCH_*``, overridden by
flags) and passed down. Heavy imports happen inside the commands so that
``driftwatch --help`` is instant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from driftwatch.settings import Settings

SERVICE_TARGET = "service.bento:Driftwatch"


def _settings(ctx: click.Context, **overrides) -> Settings:
    base = ctx.find_root().obj or {}
    values = {k: v for k, v in {**base, **overrides}.items() if v is not None}
    try:
        return Settings(**values)
    except Exception as e:  # pydantic ValidationError: say which setting is wrong
        raise click.UsageError(f"invalid setting: {e}") from e


def _store(settings: Settings):
    from driftwatch.store import Store
    store = Store(settings.database_url)
    try:
        store.create_all()
    except Exception as e:  # noqa: BLE001
        raise click.ClickException(f"cannot open the store at {settings.database_url}: {e}\n"
                                   "Check DRIFTWATCH_DATABASE_URL (or --database-url) and that the database is running.")
    return store


def _registry(settings: Settings):
    settings.apply_bentoml_home()
    from models import registry
    return registry


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data-dir", type=click.Path(path_type=Path), help="Local data: SQLite store, spool, reports, model store. [env DRIFTWATCH_DATA_DIR; default ./data]")
@click.option("--database-url", help="SQLAlchemy URL of the store, e.g. postgresql+psycopg://user@host/db. [env DRIFTWATCH_DATABASE_URL; default SQLite in the data dir]")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, database_url: str | None) -> None:
    """Serve a scikit-learn model, log every request, watch it drift, alert and retrain.

    \b
    First steps:
      driftwatch train --demo        train the demo loan-approval classifier
      driftwatch up                  service :3000, monitor :3001, Prometheus, Alertmanager
      driftwatch simulate --scenario covariate --requests 5000
    """
    ctx.obj = {"data_dir": data_dir, "database_url": database_url}


def _announce_deploy(store, package, actor: str) -> None:
    prod = store.production()
    if prod is None:
        store.deploy(package.name, package.version, reason="first model", actor=actor)
        click.echo(f"{package.tag} is now production (first model in this store).")
    else:
        click.echo(f"production stays {prod.model_name}:{prod.model_version}; "
                   f"to serve this one: driftwatch promote {package.version}")


def _print_package(package) -> None:
    click.echo(f"stored {package.tag} ({package.task}); reference {len(package.reference)} held-out rows")
    click.echo("baseline on the reference: " + ", ".join(f"{k}={v:.4f}" for k, v in package.baseline.items()))


@main.command()
@click.option("--demo", is_flag=True, help="Train on generated Agrawal loan-approval data (no download).")
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV with features and the target column.")
@click.option("--target", help="Name of the target column in --data.")
@click.option("--task", type=click.Choice(["classification", "regression"]), help="Default: inferred from the target.")
@click.option("--name", help="Model name in the store. [default: loan-approval for --demo, else the CSV's stem]")
@click.option("--estimator", type=click.Choice(["hgb", "logreg", "rf"]), default="hgb", show_default=True, help="hgb = histogram gradient boosting, logreg = logistic/ridge, rf = 100-tree random forest.")
@click.option("--rows", type=int, default=20000, show_default=True, help="Rows of demo data.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--if-missing", is_flag=True, help="Do nothing if a production model already exists.")
@click.pass_context
def train(ctx, demo, data_file, target, task, name, estimator, rows, seed, if_missing):
    """Train a model and store it with its schema, reference data and baseline.

    The first model in a store becomes production. A quarter of the rows is
    held out as the reference: baseline metrics and drift are measured on it.
    """
    import pandas as pd

    settings = _settings(ctx)
    store = _store(settings)
    if if_missing and store.production() is not None:
        prod = store.production()
        click.echo(f"production model exists ({prod.model_name}:{prod.model_version}); nothing to train.")
        return
    if demo == bool(data_file):
        raise click.UsageError("give either --demo or --data FILE --target COLUMN")
    from models.train import train_frame
    if demo:
        from models.datagen import TARGET, demo_frame
        frame, target, name, source = demo_frame(rows, seed=seed), TARGET, name or "loan-approval", f"demo agrawal rows={rows} seed={seed}"
    else:
        if not target:
            raise click.UsageError("--data needs --target COLUMN")
        frame = pd.read_csv(data_file)
        name, source = name or data_file.stem.replace("_", "-"), str(data_file)
    try:
        trained = train_frame(frame, target, task=task, estimator=estimator, trained_from=source, seed=seed)
    except ValueError as e:
        raise click.ClickException(str(e))
    package = _registry(settings).save(name, trained, extra={"estimator": estimator})
    _print_package(package)
    _announce_deploy(store, package, actor="driftwatch train")


@main.command("import")
@click.option("--model", "model_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A fitted scikit-learn estimator or Pipeline saved with joblib.dump.")
@click.option("--reference", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV of held-out rows (features + target), not training rows.")
@click.option("--target", required=True, help="Target column in --reference.")
@click.option("--name", required=True, help="Model name in the store.")
@click.pass_context
def import_(ctx, model_file, reference, target, name):
    """Package your own fitted estimator with its reference data."""
    from models.importer import ImportError_, import_estimator
    settings = _settings(ctx)
    store = _store(settings)
    try:
        trained = import_estimator(model_file, reference, target)
    except ImportError_ as e:
        raise click.ClickException(str(e))
    package = _registry(settings).save(name, trained)
    _print_package(package)
    _announce_deploy(store, package, actor="driftwatch import")


@main.command()
@click.option("--port", type=int, help="[env DRIFTWATCH_SERVICE_PORT; default 3000]")
@click.option("--host", help="[env DRIFTWATCH_SERVICE_HOST; default 127.0.0.1]")
@click.option("--workers", type=int, help="BentoML worker processes. [env DRIFTWATCH_SERVICE_WORKERS; default 1]")
@click.option("--no-log", is_flag=True, help="Do not log requests (benchmarks only).")
@click.pass_context
def serve(ctx, port, host, workers, no_log):
    """Run the BentoML service (POST /predict, /feedback; GET /model, /metrics, /docs)."""
    settings = _settings(ctx, service_port=port, service_host=host, service_workers=workers,
                         log_requests=False if no_log else None)
    store = _store(settings)
    if store.production(settings.model_name) is None:
        raise click.ClickException("no production model in the store. Train one first: driftwatch train --demo")
    env = {**os.environ, **settings.to_env()}
    # BentoML keeps its multiprocess metrics under BENTOML_HOME and wipes them at start: give this
    # server a home of its own whose model store is the shared one, so services sharing a model
    # store (replicas on one volume, tests) never reset or mix each other's metrics.
    runtime = settings.data_dir / "run" / f"bentoml-{settings.service_port}"
    runtime.mkdir(parents=True, exist_ok=True)
    models_link, models_dir = runtime / "models", Path(settings.bentoml_home) / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    if models_link.is_symlink() and models_link.resolve() != models_dir.resolve():
        models_link.unlink()
    if not models_link.exists():
        models_link.symlink_to(models_dir.resolve(), target_is_directory=True)
    env["BENTOML_HOME"] = env["DRIFTWATCH_BENTOML_HOME"] = str(runtime)
    args = [sys.executable, "-m", "bentoml", "serve", SERVICE_TARGET,
            "--host", settings.service_host, "--port", str(settings.service_port)]
    os.execvpe(args[0], args, env)


@main.command()
@click.option("--no-prometheus", is_flag=True, help="Only the service and the monitor.")
@click.option("--scrape-interval", default="15s", show_default=True, help="Prometheus scrape interval.")
@click.option("--evaluation-interval", default="15s", show_default=True, help="Prometheus rule evaluation interval.")
@click.option("--for-scale", type=float, default=1.0, show_default=True, help="Multiply every alert's `for:` (demos and tests use e.g. 0.02).")
@click.option("--group-wait", help="Alertmanager group_wait override (e.g. 1s for demos).")
@click.option("--group-interval", help="Alertmanager group_interval override.")
@click.option("--repeat-interval", help="Alertmanager repeat_interval override.")
@click.option("--train-demo/--no-train-demo", default=True, show_default=True, help="Train the demo model if the store has no production model.")
@click.pass_context
def up(ctx, no_prometheus, scrape_interval, evaluation_interval, for_scale, group_wait, group_interval,
       repeat_interval, train_demo):
    """Run everything locally: service, monitor, Prometheus and Alertmanager. Ctrl-C stops all.

    Data (store, model store, spool, reports, Prometheus and Alertmanager data,
    logs) lives under the data dir. People are notified through
    DRIFTWATCH_PEOPLE_WEBHOOK_URL (generic or, with DRIFTWATCH_PEOPLE_WEBHOOK_KIND=slack,
    a Slack incoming webhook); retraining alerts go to the monitor's /alerts.
    """
    import signal
    from driftwatch.stack import Stack, StackOptions
    settings = _settings(ctx)
    store = _store(settings)
    if store.production(settings.model_name) is None:
        if not train_demo:
            raise click.ClickException("no production model: driftwatch train --demo (or --data/import)")
        click.echo("no production model yet: training the demo model")
        ctx.invoke(train, demo=True, rows=20000, seed=42, estimator="hgb")
    stack = Stack(settings, StackOptions(scrape_interval=scrape_interval, evaluation_interval=evaluation_interval,
                                         for_scale=for_scale, group_wait=group_wait, group_interval=group_interval,
                                         repeat_interval=repeat_interval, prometheus=not no_prometheus), out=click.echo)

    def _stop(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _stop)
    try:
        click.echo("starting service, monitor" + ("" if no_prometheus else ", Prometheus, Alertmanager") + " ...")
        stack.start()
    except RuntimeError as e:
        raise click.ClickException(str(e))
    except KeyboardInterrupt:
        stack.stop()
        return
    for what, url in stack.urls().items():
        click.echo(f"  {url:<28} {what}")
    click.echo(f"logs: {settings.data_dir / 'logs'}   try: driftwatch simulate --scenario covariate --requests 3000")
    click.echo("Ctrl-C stops everything.")
    try:
        code = stack.wait()
    except KeyboardInterrupt:
        click.echo("stopping ...")
        stack.stop()
        code = 0
    ctx.exit(code)


@main.command()
@click.option("--port", type=int, help="[env DRIFTWATCH_MONITOR_PORT; default 3001]")
@click.option("--host", help="[env DRIFTWATCH_MONITOR_HOST; default 127.0.0.1]")
@click.option("--interval", type=float, help="Seconds between checks for new rows. [env DRIFTWATCH_MONITOR_INTERVAL_SECONDS; default 10]")
@click.option("--window-size", type=int, help="Count window: the last N predictions; thresholds are calibrated for N. [env DRIFTWATCH_WINDOW_SIZE; default 1000]")
@click.option("--window-seconds", type=float, help="Time window: the predictions of the last S seconds (0 = count window). [env DRIFTWATCH_WINDOW_SECONDS; default 0]")
@click.pass_context
def monitor(ctx, port, host, interval, window_size, window_seconds):
    """Run the monitor beside the service: drift, quality, performance and concept drift of the production model.

    \b
    GET  /metrics          Prometheus metrics (driftwatch_*)
    GET  /status           JSON of the latest window
    GET  /reports/latest   Evidently HTML report of a window (also /reports/RUN_ID)
    POST /alerts           Alertmanager webhook (Bearer DRIFTWATCH_ALERT_TOKEN); action="retrain" retrains
    GET  /healthz
    """
    import logging

    import uvicorn

    from models.trigger import RetrainTrigger
    from monitors.app import build_monitor_app
    from monitors.runner import Monitor

    settings = _settings(ctx, monitor_port=port, monitor_host=host, monitor_interval_seconds=interval,
                         window_size=window_size, window_seconds=window_seconds)
    store = _store(settings)
    registry = _registry(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if store.production(settings.model_name) is None:
        click.echo("no production model yet: the monitor waits for one (driftwatch train --demo)", err=True)

    def load_production():
        prod = store.production(settings.model_name)
        return registry.load(prod.model_name, prod.model_version)

    mon = Monitor(settings, store, registry.load)
    trigger = RetrainTrigger(store, load_production, _policy(settings), settings.retrain_cooldown_seconds,
                             wait_seconds=settings.retrain_wait_seconds, poll_seconds=settings.retrain_poll_seconds)
    app = build_monitor_app(settings, store, mon, trigger=trigger)
    window = (f"last {settings.window_seconds:g} s" if settings.window_seconds > 0
              else f"last {settings.window_size} predictions")
    click.echo(f"monitor on http://{settings.monitor_host}:{settings.monitor_port} (window: {window}, "
               f"every {settings.monitor_interval_seconds:g} s; store {settings.database_url})")
    uvicorn.run(app, host=settings.monitor_host, port=settings.monitor_port, log_level="warning")


@main.command()
@click.option("--run-id", type=int, help="Window (monitor_runs id) to report. [default: the latest]")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the HTML here. [default: the cached file under DATA_DIR/reports]")
@click.pass_context
def report(ctx, run_id, output):
    """Write the Evidently HTML report (drift, data quality, model quality) of a recorded window."""
    import shutil

    from monitors.runner import render_report

    settings = _settings(ctx)
    store = _store(settings)
    registry = _registry(settings)
    try:
        path = render_report(settings, store, registry.load, run_id)
    except Exception as e:  # noqa: BLE001 - e.g. the window's model version was deleted from the model store
        raise click.ClickException(f"cannot build the report: {e}")
    if path is None:
        raise click.ClickException(f"no window with run id {run_id}" if run_id is not None else
                                   "no window recorded yet: run `driftwatch monitor` (or `driftwatch up`) with traffic")
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, output)
        path = output
    click.echo(str(path))


@main.command()
@click.argument("version")
@click.option("--name", help="Model name. [default: the production model's name]")
@click.option("--reason", default="manual promotion", show_default=True)
@click.pass_context
def promote(ctx, version, name, reason):
    """Make VERSION the production model; running services switch within seconds."""
    settings = _settings(ctx)
    store = _store(settings)
    registry = _registry(settings)
    prod = store.production(settings.model_name)
    name = name or (prod.model_name if prod else None)
    if not name:
        raise click.UsageError("no production model yet: give --name")
    if not registry.exists(name, version):
        known = ", ".join(v["version"] for v in registry.versions(name)) or "none"
        raise click.ClickException(f"{name}:{version} is not in the model store (versions: {known})")
    d = store.deploy(name, version, reason=reason, actor="driftwatch promote")
    click.echo(f"production: {d.model_name}:{d.model_version} (was {d.previous_version})")


@main.command()
@click.option("--reason", default="manual rollback", show_default=True)
@click.pass_context
def rollback(ctx, reason):
    """Return to the version that was production before the current one."""
    settings = _settings(ctx)
    store = _store(settings)
    prod = store.production(settings.model_name)
    if prod is None or not prod.previous_version:
        raise click.ClickException("nothing to roll back to: the current production model has no predecessor")
    d = store.deploy(prod.model_name, prod.previous_version, reason=reason, actor="driftwatch rollback")
    click.echo(f"production: {d.model_name}:{d.model_version} (was {d.previous_version})")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx, as_json):
    """Production model, deployments, request log, latest monitor window and retrains."""
    settings = _settings(ctx)
    store = _store(settings)
    out = {
        "store": settings.database_url,
        "production": None,
        "deployments": [{"ts": d.ts.isoformat(), "model": f"{d.model_name}:{d.model_version}",
                         "previous": d.previous_version, "reason": d.reason, "actor": d.actor}
                        for d in store.deployments(limit=10)],
        "predictions_logged": store.count_predictions(),
        "feedback": store.feedback_stats(),
        "latest_window": None,
        "retrains": [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
                     for r in store.retrains(limit=5)],
    }
    prod = store.production(settings.model_name)
    if prod:
        out["production"] = f"{prod.model_name}:{prod.model_version}"
    runs = store.monitor_runs(limit=1)
    if runs:
        r = runs[0]
        out["latest_window"] = {"run_id": r["id"], "ts": str(r["ts"]), "rows": r["rows"],
                                "dataset_drift": r["dataset_drift"], "drift_share": r["drift_share"],
                                "prediction_drift": r["prediction_drift"], "concept_drift": r["concept_drift"]}
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(f"store:       {out['store']}")
    click.echo(f"production:  {out['production'] or 'none (driftwatch train --demo)'}")
    click.echo(f"predictions: {out['predictions_logged']} logged; labels {out['feedback']['labels']} "
               f"({out['feedback']['conflicts']} conflicting)")
    if out["latest_window"]:
        w = out["latest_window"]
        click.echo(f"last window: run {w['run_id']} at {w['ts']}: {w['rows']} rows, dataset drift {w['dataset_drift']} "
                   f"(share {w['drift_share']:.2f}), prediction drift {w['prediction_drift']}, concept drift {w['concept_drift']}")
    click.echo("deployments:")
    for d in out["deployments"]:
        click.echo(f"  {d['ts']}  {d['model']:<40} {d['actor']}: {d['reason']}")
    if out["retrains"]:
        click.echo("retrains:")
        for r in out["retrains"]:
            click.echo(f"  #{r['id']} {r['started_at']} {r['trigger']}: {r['outcome']} — {r.get('reason') or ''}")
        _print_retrain_detail(out["retrains"][0])


def _print_retrain_detail(r: dict) -> None:
    """Metrics, data sizes and worst slices of one retrain."""
    m, data, ea = r.get("metrics") or {}, r.get("data") or {}, r.get("error_analysis") or {}
    dec = m.get("decision")
    click.echo(f"latest retrain #{r['id']} ({r['outcome']}), candidate {r.get('candidate_version') or '-'}:")
    if data:
        click.echo("  data: " + ", ".join(f"{k}={v}" for k, v in data.items()))
    if dec:
        k = dec["metric"]
        for who in ("production", "candidate"):
            click.echo(f"  {who:<10} {k}: recent hold-out {m[who]['recent'][k]:.4f}, original hold-out {m[who]['original'][k]:.4f}")
    for who, slices in ea.items():
        if slices:
            worst = "; ".join(f"{s['slice']} (n={s['rows']}, error {s['error']:.3f})" for s in slices[:3])
            click.echo(f"  worst slices for {who}: {worst}")


@main.command()
@click.option("--scenario", type=click.Choice(["none", "covariate", "prior", "concept"]), default="none", show_default=True,
              help="none = training distribution; covariate = older, richer applicants; prior = 20% approvals; concept = another approval rule.")
@click.option("--requests", "n_requests", type=int, default=2000, show_default=True, help="POST /predict calls to send.")
@click.option("--rate", type=float, default=50.0, show_default=True, help="Requests per second (0 = as fast as possible).")
@click.option("--batch", type=int, default=1, show_default=True, help="Instances per request.")
@click.option("--label-delay", type=float, default=5.0, show_default=True, help="Seconds before each label is sent to /feedback.")
@click.option("--label-share", type=float, default=1.0, show_default=True, help="Share of instances that get a label.")
@click.option("--drift-after", type=int, default=0, show_default=True, help="Requests of undrifted traffic before the drift starts.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--url", help="Service URL. [env DRIFTWATCH_SERVICE_URL; default http://127.0.0.1:3000]")
@click.pass_context
def simulate(ctx, scenario, n_requests, rate, batch, label_delay, label_share, drift_after, seed, url):
    """Send demo traffic with a chosen drift over HTTP, and feed labels back after a delay."""
    import asyncio
    from models.simulate import simulate as run
    settings = _settings(ctx, service_url=url)
    try:
        rep = asyncio.run(run(settings.service_url, scenario, requests=n_requests, rate=rate, label_delay=label_delay,
                              label_share=label_share, batch=batch, drift_after=drift_after, seed=seed))
    except KeyboardInterrupt:
        raise click.Abort()
    click.echo(rep.summary())
    if rep.ok == 0:
        raise click.ClickException(f"no request succeeded; is the service running at {settings.service_url}? "
                                   "(driftwatch up, or driftwatch serve)")


def _policy(settings: Settings):
    from models.retrain import RetrainPolicy
    return RetrainPolicy(min_labeled_rows=settings.retrain_min_labeled_rows, margin=settings.promote_margin,
                         max_original_drop=settings.promote_max_original_drop)


@main.command()
@click.option("--no-promote", is_flag=True, help="Train and judge the candidate, but do not promote it.")
@click.option("--min-labeled-rows", type=int, help="[env DRIFTWATCH_RETRAIN_MIN_LABELED_ROWS; default 500]")
@click.pass_context
def retrain(ctx, no_promote, min_labeled_rows):
    """Retrain on reference + recent labeled traffic; promote the candidate if it is better.

    Promotion needs: primary metric (accuracy, or RMSE for regressors) better
    on the newest 30% of labeled rows by DRIFTWATCH_PROMOTE_MARGIN, and not
    worse on the original hold-out by more than DRIFTWATCH_PROMOTE_MAX_ORIGINAL_DROP.
    """
    from models import retrain as rt
    settings = _settings(ctx, retrain_min_labeled_rows=min_labeled_rows)
    store = _store(settings)
    registry = _registry(settings)
    prod = store.production(settings.model_name)
    if prod is None:
        raise click.ClickException("no production model: driftwatch train --demo")
    result = rt.run(store, registry.load(prod.model_name, prod.model_version), _policy(settings),
                    trigger="driftwatch retrain", progress=True, promote=not no_promote)
    click.echo(f"{result.outcome}: {result.reason}")
    if result.candidate_version:
        click.echo(f"candidate {prod.model_name}:{result.candidate_version}")
    dec = result.metrics.get("decision")
    if dec:
        for who in ("production", "candidate"):
            m = result.metrics[who]
            click.echo(f"  {who:<10} recent {dec['metric']}={m['recent'][dec['metric']]:.4f}  "
                       f"original {dec['metric']}={m['original'][dec['metric']]:.4f}")


if __name__ == "__main__":  # pragma: no cover
    main()
