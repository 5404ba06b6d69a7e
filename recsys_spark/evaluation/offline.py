"""The standalone evaluation runner: split, holdout lake, baseline, scores, report.

The sequence (`jobs/evaluate.py`):

1. `prepare_split` splits the user-item pairs of `interactions` (config `evaluation`)
   into `eval_train` and `eval_test` under the storage root, and writes the training
   side's events to `<root>/holdout/interactions`, so models trained on that root never
   see a test pair;
2. the model jobs run with `storage.root=<root>/holdout`;
3. `run_evaluation` scores the lists of `<root>/holdout/model_recommendations` (each
   model of `evaluation.models`, or every one there) and the most-popular baseline over
   the test users, and writes metrics.json and report.html (`write_report`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import EvaluationConfig, StorageConfig, TrackingConfig
from recsys_spark.data.splits import (
    chronological_split,
    leave_last_k_out,
    random_split_per_user,
    split_summary,
)
from recsys_spark.evaluation.model_eval import evaluate_lists, most_popular_lists
from recsys_spark.evaluation.report import (
    format_table,
    summary_columns,
    write_html,
    write_metrics_json,
)
from recsys_spark.io import delta
from recsys_spark.logs import get_logger, stage
from recsys_spark.models.affinity import user_item_affinity

log = get_logger(__name__)


def holdout_storage(storage: StorageConfig) -> StorageConfig:
    """The storage root model jobs use for evaluation runs: `<root>/holdout`."""
    return StorageConfig(root=storage.table(tables.HOLDOUT))


def split_pairs(pairs: DataFrame, cfg: EvaluationConfig) -> tuple[DataFrame, DataFrame]:
    """Split user-item pairs (the affinity frame) with the protocol of `cfg.split`."""
    if cfg.split == "random":
        return random_split_per_user(pairs, test_ratio=cfg.test_ratio, seed=cfg.seed)
    if cfg.split == "chronological":
        cut = datetime.fromisoformat(cfg.cut)
        return chronological_split(pairs, cut=cut, ts_col=C.LAST_TS)
    return leave_last_k_out(pairs, k=cfg.leave_k, ts_col=C.LAST_TS, min_train=cfg.min_train)


SPLIT_SCHEMA = T.StructType(
    [
        T.StructField("fingerprint", T.StringType(), False),
        T.StructField("interactions_version", T.LongType(), True),
        T.StructField("settings", T.StringType(), False),
    ]
)


def split_description(cfg: EvaluationConfig) -> dict[str, Any]:
    """The split's kind and the parameters that define it (for metrics.json)."""
    if cfg.split == "random":
        return {"kind": "random", "test_ratio": cfg.test_ratio, "seed": cfg.seed}
    if cfg.split == "chronological":
        return {"kind": "chronological", "cut": cfg.cut}
    return {"kind": "leave_last_k_out", "k": cfg.leave_k, "min_train": cfg.min_train}


def split_fingerprint(evaluation: EvaluationConfig, interactions_version: int | None) -> str:
    """What a split is made of: its settings and the interactions version it was cut from."""
    text = json.dumps(
        {**split_description(evaluation), "interactions_version": interactions_version},
        sort_keys=True,
    )
    return hashlib.md5(text.encode()).hexdigest()[:16]


def stored_fingerprint(spark: SparkSession, storage: StorageConfig) -> str | None:
    """The fingerprint of the split under `storage`, or None (no split, or an unfinished one)."""
    path = storage.table(tables.EVAL_SPLIT)
    if not delta.table_exists(spark, path):
        return None
    row = delta.read_table(spark, path).first()
    return row["fingerprint"] if row is not None else None


def prepare_split(
    spark: SparkSession, evaluation: EvaluationConfig, storage: StorageConfig
) -> dict[str, int]:
    """Split the interactions' pairs; write eval_train, eval_test and the holdout lake.

    The split's fingerprint (`eval_split`) is emptied first and written last: a split cut
    short by a crash has none, and is cut again by the next evaluation.
    """
    path = storage.table(tables.INTERACTIONS)
    interactions = delta.read_required(spark, path)
    version = delta.table_version(spark, path)
    interactions = delta.read_table(spark, path, version=version)
    marker = storage.table(tables.EVAL_SPLIT)
    if delta.table_exists(spark, marker):
        delta.overwrite(spark.createDataFrame([], SPLIT_SCHEMA), marker)
    affinity = user_item_affinity(interactions)
    train, test = split_pairs(affinity, evaluation)
    with stage(log, f"{evaluation.split} split"):
        delta.overwrite(train, storage.table(tables.EVAL_TRAIN))
        delta.overwrite(test, storage.table(tables.EVAL_TEST))
    train = delta.read_table(spark, storage.table(tables.EVAL_TRAIN))
    train_pairs = train.select(C.USER_ID, C.ITEM_ID)
    train_events = interactions.join(train_pairs, on=[C.USER_ID, C.ITEM_ID], how="left_semi")
    holdout = holdout_storage(storage)
    with stage(log, "holdout interactions"):
        delta.overwrite(
            train_events.select(*interactions.columns), holdout.table(tables.INTERACTIONS)
        )
    summary = split_summary(train, delta.read_table(spark, storage.table(tables.EVAL_TEST)))
    fingerprint = split_fingerprint(evaluation, version)
    row = (fingerprint, version, json.dumps(split_description(evaluation), sort_keys=True))
    delta.overwrite(spark.createDataFrame([row], SPLIT_SCHEMA), marker)
    log.info("split %s of interactions version %s: %s", fingerprint, version, summary)
    log.info("train models on the holdout lake: --set storage.root=%s", holdout.root)
    return summary


def report_folder(storage: StorageConfig, folder: str) -> Path:
    """Local folder of metrics.json and report.html: `<root>/<folder>`.

    A remote storage root (s3a://, abfss://...) cannot take plain file writes: the report
    then goes to the same relative folder under the working directory.
    """
    uri = urlparse(storage.root_uri)
    base = Path(uri.path) if uri.scheme == "file" else Path.cwd()
    return base / folder


def run_evaluation(
    spark: SparkSession,
    evaluation: EvaluationConfig,
    tracking: TrackingConfig,
    storage: StorageConfig,
    *,
    prepare: bool = False,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Split (when asked or missing), score every model and the baseline, write the report.

    Reads and writes under `storage`'s root; the report goes to
    `report_folder(storage, evaluation.report_dir)`. With `prepare` it only splits.

    Returns
    -------
    dict
        The metrics.json document; its `report` entry holds the written file paths. With
        `prepare`, only the split's description and counts.
    """
    run_id = run_id or uuid.uuid4().hex
    train_path = storage.table(tables.EVAL_TRAIN)
    test_path = storage.table(tables.EVAL_TEST)
    source = storage.table(tables.INTERACTIONS)
    expected = split_fingerprint(evaluation, delta.table_version(spark, source))
    stored = stored_fingerprint(spark, storage)
    if not prepare and not evaluation.resplit and stored != expected:
        log.info(
            "split %s: cutting it again (%s)",
            expected,
            "none stored"
            if stored is None
            else f"the stored one, {stored}, is of other settings or another interactions version",
        )
    summary = None
    if prepare or evaluation.resplit or stored != expected:
        summary = prepare_split(spark, evaluation, storage)
    if prepare:
        return {"split": {**split_description(evaluation), "summary": summary}}
    train = delta.read_table(spark, train_path).cache()
    test = delta.read_table(spark, test_path).cache()
    summary = summary or split_summary(train, test)
    users = test.select(C.USER_ID).distinct()
    baselines_path = storage.table(tables.EVAL_RECOMMENDATIONS)
    with stage(log, "most-popular baseline"):
        # As long as the models' lists (evaluation.k): `map` covers the whole list.
        baseline = most_popular_lists(train, users, n=evaluation.k).select(
            C.USER_ID,
            C.ITEM_ID,
            C.RANK,
            C.SCORE,
            F.lit(tables.MOST_POPULAR).alias(C.MODEL),
            F.lit("popularity").alias(C.SOURCE),
            F.lit(run_id).alias(C.RUN_ID),
        )
        delta.replace_where(baseline, baselines_path, f"{C.MODEL} = '{tables.MOST_POPULAR}'")
    lists = {
        tables.MOST_POPULAR: delta.read_table(spark, baselines_path).filter(
            F.col(C.MODEL) == tables.MOST_POPULAR
        )
    }
    recs_path = holdout_storage(storage).table(tables.MODEL_RECOMMENDATIONS)
    lists.update(lists_of_test_users(spark, recs_path, evaluation.models, users))
    doc = evaluate_lists(
        lists,
        train,
        test,
        evaluation,
        run_id=run_id,
        split={**split_description(evaluation), "summary": summary},
        table_paths={
            "train": train_path,
            "test": test_path,
            "recommendations": recs_path,
            "baseline": baselines_path,
        },
    )
    write_report(doc, report_folder(storage, evaluation.report_dir), tracking)
    train.unpersist()
    test.unpersist()
    return doc


def lists_of_test_users(
    spark: SparkSession, recs_path: str, models: tuple[str, ...], users: DataFrame
) -> dict[str, DataFrame]:
    """The test users' lists of each wanted model (every model there when none named):
    what `run_evaluation` scores, and `make bench-quality` with it."""
    if not delta.table_exists(spark, recs_path):
        log.warning("no recommendations at %s: only the baseline is evaluated", recs_path)
        return {}
    recs = delta.read_table(spark, recs_path)
    present = sorted(r[C.MODEL] for r in recs.select(C.MODEL).distinct().collect())
    lists = {}
    for model in list(models) or present:
        if model not in present:
            log.warning("model %s has no rows in %s; skipped", model, recs_path)
            continue
        # The test users' lists only, as the baseline's: coverage, novelty and diversity
        # are then over the same users for every model.
        model_recs = recs.filter(F.col(C.MODEL) == model)
        lists[model] = model_recs.join(users, on=C.USER_ID, how="left_semi")
    return lists


def write_report(doc: dict[str, Any], folder: Path, tracking: TrackingConfig) -> None:
    """Log the table, write metrics.json and report.html into `folder`, log to MLflow.

    Adds `doc["report"]` with the files written (and the MLflow run id when tracking).
    """
    json_path = write_metrics_json(doc, folder / "metrics.json")
    html_path = write_html(doc, folder / "report.html")
    doc["report"] = {"metrics_json": str(json_path), "html": str(html_path)}
    log.info(
        "metrics (%s users evaluated, split %s):\n%s",
        {m: int(v.get("users_evaluated", 0)) for m, v in doc["models"].items()},
        doc["split"].get("kind"),
        format_table(doc["models"], summary_columns(doc["ks"], doc["k"])),
    )
    log.info("wrote %s and %s", json_path, html_path)
    if tracking.enabled:
        from recsys_spark.tracking import log_to_mlflow

        flat = {f"{m}.{k}": v for m, values in doc["models"].items() for k, v in values.items()}
        params = {f"split.{k}": v for k, v in doc["split"].items() if k != "summary"}
        doc["report"]["mlflow_run_id"] = log_to_mlflow(
            tracking,
            metrics=flat,
            params={**params, "ks": doc["ks"], "k": doc["k"], "eval_run_id": doc["run_id"]},
            artifacts=[json_path, html_path],
            run_name="evaluate",
        )
