"""MLflow helpers: parameter names and the status of a run whose logging fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_spark.config import TrackingConfig, load_config
from recsys_spark.pipeline.lineage import config_params
from recsys_spark.tracking import log_to_mlflow, use_experiment


def test_config_params_make_map_keys_valid_mlflow_names() -> None:
    cfg = load_config(None, ["ingest.event_weights={add+cart: 4.0, view: 1.0}"])
    params = config_params(cfg)
    assert params["ingest.event_weights.add_cart"] == "4.0"
    assert params["ingest.event_weights.view"] == "1.0"
    assert params["nightly.gate_metric"] == "ndcg_at_10"


def test_a_run_whose_logging_fails_ends_failed(tmp_path: Path) -> None:
    import mlflow

    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="t")
    with pytest.raises(mlflow.exceptions.MlflowException):
        log_to_mlflow(cfg, metrics={"m": 1.0}, run_name="bad", tags={"bad+tag": "x"})
    assert mlflow.active_run() is None
    log_to_mlflow(cfg, metrics={"m": 1.0}, run_name="good")
    runs = mlflow.search_runs(experiment_names=["t"], output_format="list")
    assert sorted((r.info.run_name, r.info.status) for r in runs) == [
        ("bad", "FAILED"),
        ("good", "FINISHED"),
    ]


def test_the_experiment_opens_on_its_runs_and_a_chosen_kind_is_kept(tmp_path: Path) -> None:
    import mlflow

    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="kinds")
    log_to_mlflow(cfg, metrics={"m": 1.0}, run_name="first")
    experiment = mlflow.MlflowClient().get_experiment_by_name("kinds")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # A kind someone chose in the UI is theirs: a later run leaves it alone.
    mlflow.MlflowClient().set_experiment_tag(
        experiment.experiment_id, "mlflow.experimentKind", "genai_development"
    )
    use_experiment(cfg)
    again = mlflow.MlflowClient().get_experiment_by_name("kinds")
    assert again.tags["mlflow.experimentKind"] == "genai_development"
