"""MLflow logging in one place: a dict of metrics, params and files to a run.

Jobs call `log_to_mlflow` only when `cfg.tracking.enabled`; mlflow is imported lazily so
a job with tracking off never pays for it. Tests point `uri` at a temporary SQLite file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recsys_spark.config import TrackingConfig

_BAD_KEY = re.compile(r"[^0-9A-Za-z_\-. /]")
# MLflow 3's UI opens an experiment by its kind: this one opens on its runs, not GenAI.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def use_experiment(cfg: TrackingConfig) -> Any:
    """Point mlflow at `cfg.uri` and `cfg.experiment` (created as a classic-ML experiment).

    Returns the imported `mlflow` module; imported here so jobs with tracking off never
    load it.
    """
    import mlflow

    mlflow.set_tracking_uri(cfg.uri)
    experiment = mlflow.set_experiment(cfg.experiment)
    key, kind = EXPERIMENT_KIND
    if key not in experiment.tags:
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, key, kind)
    return mlflow


def metric_key(name: str) -> str:
    """`name` with the characters MLflow rejects in metric keys replaced by `_`."""
    return _BAD_KEY.sub("_", name)


def log_to_mlflow(
    cfg: TrackingConfig,
    *,
    metrics: Mapping[str, float],
    params: Mapping[str, object] | None = None,
    artifacts: Sequence[str | Path] = (),
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Log metrics, params and files to the active MLflow run, or to a new one.

    Parameters
    ----------
    cfg
        Tracking settings: `uri` (for example `sqlite:///mlflow.db`) and `experiment`.
    metrics
        Metric name -> value; names are made MLflow-safe with `metric_key`, non-finite
        values are skipped.
    artifacts
        Files to attach to the run (missing files are skipped).

    Returns
    -------
    str
        The MLflow run id.
    """
    import mlflow

    mlflow.set_tracking_uri(cfg.uri)
    active = mlflow.active_run()
    if active is None:
        use_experiment(cfg)
        run = mlflow.start_run(run_name=run_name)
    else:
        run = active
    status = "FAILED"
    try:
        if tags:
            mlflow.set_tags(dict(tags))
        if params:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        clean = {
            metric_key(k): float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and float(v) == float(v) and abs(float(v)) != float("inf")
        }
        if clean:
            mlflow.log_metrics(clean)
        for path in artifacts:
            if Path(path).is_file():
                mlflow.log_artifact(str(path))
        status = "FINISHED"
        return run.info.run_id
    finally:
        if active is None:
            mlflow.end_run(status=status)
