"""``driftwatch`` — the command line, and the composition root.

Settings are built once here (environment ``DRIFTWATCH_*``, overridden by
flags) and passed down. Heavy imports happen inside the commands so that
``driftwatch --help`` is instant.
"""

from __future__ import annotations

import json
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


from driftwatch import cli_run  # noqa: F401 - registers serve, up, monitor, simulate

if __name__ == "__main__":  # pragma: no cover - `python -m driftwatch.cli`: use the registered group
    from driftwatch.cli import main as registered
    registered()
