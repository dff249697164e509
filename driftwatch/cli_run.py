"""Commands that run processes or traffic: ``serve``, ``up``, ``monitor``, ``simulate``.

Registered on the ``driftwatch`` group defined in ``driftwatch.cli``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from driftwatch.cli import (
    SERVICE_TARGET,
    _policy,
    _registry,
    _settings,
    _store,
    main,
    train,
)


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
    # SIGINT explicitly too: a process started from a non-interactive shell's background job inherits
    # SIGINT ignored, and Python then leaves it ignored (Ctrl-C / kill -INT would do nothing)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
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
