"""Evaluate every model's top-N lists against a held-out split, with a most-popular baseline.

    python jobs/evaluate.py --conf conf/local.yml --prepare   # 1. split, holdout lake
    python jobs/train_als.py --set storage.root=<root>/holdout  # 2. models on train only
    python jobs/evaluate.py --conf conf/local.yml             # 3. metrics.json + report.html

`--prepare` splits the user-item pairs of the interactions table (config `evaluation`),
writes `eval_train` and `eval_test` under the storage root, and the training side's
interactions to `<root>/holdout/interactions`, so model jobs pointed at that root never
see a test pair. Without `--prepare` the split is made when missing (or with
`evaluation.resplit`), then the lists of `<root>/holdout/model_recommendations` (each model
in `evaluation.models`, or every one there) and the most-popular baseline are scored.

Exit codes: 0 done, 2 missing input tables or bad configuration.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.affinity import user_item_affinity
from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.config import AppConfig, EvaluationConfig, StorageConfig
from recsys_spark.evaluation.evaluate import (
    BASELINE_MODEL,
    EvaluationParams,
    evaluate_model,
    most_popular_lists,
    prepare_training,
)
from recsys_spark.evaluation.report import (
    format_table,
    summary_columns,
    write_html,
    write_metrics_json,
)
from recsys_spark.io import delta
from recsys_spark.logs import get_logger, stage
from recsys_spark.session import get_spark
from recsys_spark.split import (
    chronological_split,
    leave_last_k_out,
    random_split_per_user,
    split_summary,
)

log = get_logger("jobs.evaluate")
HOLDOUT = "holdout"
EVAL_RECOMMENDATIONS = "eval_recommendations"


class MissingInputError(RuntimeError):
    """A table the evaluation needs does not exist; the message says which job makes it."""


def holdout_storage(storage: StorageConfig) -> StorageConfig:
    """The storage root model jobs use for evaluation runs: `<root>/holdout`."""
    return StorageConfig(root=storage.table(HOLDOUT))


def split_pairs(pairs: DataFrame, cfg: EvaluationConfig) -> tuple[DataFrame, DataFrame]:
    """Split user-item pairs (the affinity frame) with the protocol of `cfg.split`."""
    if cfg.split == "random":
        return random_split_per_user(pairs, test_ratio=cfg.test_ratio, seed=cfg.seed)
    if cfg.split == "chronological":
        cut = datetime.fromisoformat(cfg.cut)
        return chronological_split(pairs, cut=cut, ts_col=C.LAST_TS)
    return leave_last_k_out(pairs, k=cfg.leave_k, ts_col=C.LAST_TS, min_train=cfg.min_train)


def split_description(cfg: EvaluationConfig) -> dict[str, Any]:
    """The split's kind and the parameters that define it (for metrics.json)."""
    if cfg.split == "random":
        return {"kind": "random", "test_ratio": cfg.test_ratio, "seed": cfg.seed}
    if cfg.split == "chronological":
        return {"kind": "chronological", "cut": cfg.cut}
    return {"kind": "leave_last_k_out", "k": cfg.leave_k, "min_train": cfg.min_train}


def prepare_split(spark: SparkSession, cfg: AppConfig) -> dict[str, int]:
    """Split the interactions' pairs; write eval_train, eval_test and the holdout lake."""
    path = cfg.storage.table(tables.INTERACTIONS)
    if not delta.table_exists(spark, path):
        raise MissingInputError(f"no Delta table at {path}: run jobs/ingest.py first")
    interactions = delta.read_table(spark, path)
    affinity = user_item_affinity(interactions)
    train, test = split_pairs(affinity, cfg.evaluation)
    with stage(log, f"{cfg.evaluation.split} split"):
        delta.overwrite(train, cfg.storage.table(tables.EVAL_TRAIN))
        delta.overwrite(test, cfg.storage.table(tables.EVAL_TEST))
    train = delta.read_table(spark, cfg.storage.table(tables.EVAL_TRAIN))
    train_pairs = train.select(C.USER_ID, C.ITEM_ID)
    train_events = interactions.join(train_pairs, on=[C.USER_ID, C.ITEM_ID], how="left_semi")
    holdout = holdout_storage(cfg.storage).table(tables.INTERACTIONS)
    with stage(log, "holdout interactions"):
        delta.overwrite(train_events.select(*interactions.columns), holdout)
    summary = split_summary(train, delta.read_table(spark, cfg.storage.table(tables.EVAL_TEST)))
    log.info("split: %s", summary)
    log.info(
        "train models on the holdout lake: --set storage.root=%s", holdout_storage(cfg.storage).root
    )
    return summary


def report_dir(cfg: AppConfig) -> Path:
    """Local folder of metrics.json and report.html: `<root>/<evaluation.report_dir>`.

    A remote storage root (s3a://, abfss://...) cannot take plain file writes: the report
    then goes to the same relative folder under the working directory.
    """
    uri = urlparse(cfg.storage.root_uri)
    base = Path(uri.path) if uri.scheme == "file" else Path.cwd()
    return base / cfg.evaluation.report_dir


def evaluation_params(cfg: EvaluationConfig) -> EvaluationParams:
    """The `EvaluationParams` of the config section `evaluation`."""
    return EvaluationParams(
        ks=cfg.ks,
        k=cfg.k,
        relevance_col=cfg.relevance_col or None,
        head_share=cfg.head_share,
        cold_max_history=cfg.cold_max_history,
        heavy_quantile=cfg.heavy_quantile,
        diversity_max_users=cfg.diversity_max_users or None,
        seed=cfg.seed,
    )


def evaluate_lists(
    lists: dict[str, DataFrame],
    train: DataFrame,
    test: DataFrame,
    params: EvaluationParams,
    *,
    run_id: str,
    split: dict[str, Any],
    table_paths: dict[str, str],
) -> dict[str, Any]:
    """Evaluate each model's lists; returns the metrics.json document (see report.py)."""
    doc: dict[str, Any] = {
        "schema_version": 1,
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": split,
        "ks": sorted(set(params.ks)),
        "k": params.k,
        "models": {},
        "breakdowns": {},
        "curves": {},
        "tables": table_paths,
    }
    with stage(log, "training pairs packed for every model"):
        prepared = prepare_training(train)
    try:
        for model, recs in lists.items():
            # evaluate_model reads the lists once (one Spark action): no cache needed.
            with stage(log, f"evaluate {model}"):
                lists_only = recs.select(C.USER_ID, C.ITEM_ID, C.RANK)
                result = evaluate_model(lists_only, prepared, test, params)
            doc["models"][model] = result.metrics
            doc["breakdowns"][model] = result.breakdowns
            doc["curves"][model] = result.curves
    finally:
        prepared.unpersist()
    return doc


def run(
    spark: SparkSession, cfg: AppConfig, *, prepare: bool = False, run_id: str | None = None
) -> dict[str, Any]:
    """Split (when asked or missing), score every model and the baseline, write the report.

    Returns the metrics.json document; its `report` entry holds the written file paths.
    """
    ev = cfg.evaluation
    run_id = run_id or uuid.uuid4().hex
    train_path, test_path = (
        cfg.storage.table(tables.EVAL_TRAIN),
        cfg.storage.table(tables.EVAL_TEST),
    )
    missing = not (delta.table_exists(spark, train_path) and delta.table_exists(spark, test_path))
    summary = prepare_split(spark, cfg) if prepare or ev.resplit or missing else None
    if prepare:
        return {"split": {**split_description(ev), "summary": summary}}
    train = delta.read_table(spark, train_path).cache()
    test = delta.read_table(spark, test_path).cache()
    summary = summary or split_summary(train, test)

    lists: dict[str, DataFrame] = {}
    users = test.select(C.USER_ID).distinct()
    with stage(log, "most-popular baseline"):
        # As long as the models' lists (evaluation.k): `map` covers the whole list.
        baseline = most_popular_lists(train, users, n=ev.k)
        baseline = baseline.withColumn(C.MODEL, F.lit(BASELINE_MODEL))
        baseline = baseline.withColumn(C.SOURCE, F.lit("popularity"))
        baseline = baseline.withColumn(C.RUN_ID, F.lit(run_id))
        baselines_path = cfg.storage.table(EVAL_RECOMMENDATIONS)
        delta.replace_where(
            baseline.select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE, C.MODEL, C.SOURCE, C.RUN_ID),
            baselines_path,
            f"{C.MODEL} = '{BASELINE_MODEL}'",
        )
    lists[BASELINE_MODEL] = delta.read_table(spark, baselines_path).filter(
        F.col(C.MODEL) == BASELINE_MODEL
    )
    recs_path = holdout_storage(cfg.storage).table(tables.MODEL_RECOMMENDATIONS)
    if delta.table_exists(spark, recs_path):
        recs = delta.read_table(spark, recs_path)
        present = sorted(r[C.MODEL] for r in recs.select(C.MODEL).distinct().collect())
        wanted = list(ev.models) or present
        for model in wanted:
            if model not in present:
                log.warning("model %s has no rows in %s; skipped", model, recs_path)
                continue
            # The test users' lists only, as the baseline's: coverage, novelty and
            # diversity are then over the same users for every model.
            model_recs = recs.filter(F.col(C.MODEL) == model)
            lists[model] = model_recs.join(users, on=C.USER_ID, how="left_semi")
    else:
        log.warning("no recommendations at %s: only the baseline is evaluated", recs_path)

    doc = evaluate_lists(
        lists,
        train,
        test,
        evaluation_params(ev),
        run_id=run_id,
        split={**split_description(ev), "summary": summary},
        table_paths={
            "train": train_path,
            "test": test_path,
            "recommendations": recs_path,
            "baseline": baselines_path,
        },
    )
    finish_report(doc, cfg)
    train.unpersist()
    test.unpersist()
    return doc


def finish_report(doc: dict[str, Any], cfg: AppConfig) -> None:
    """Log the table, write metrics.json and report.html, log to MLflow when tracking is on."""
    out = report_dir(cfg)
    json_path = write_metrics_json(doc, out / "metrics.json")
    html_path = write_html(doc, out / "report.html")
    doc["report"] = {"metrics_json": str(json_path), "html": str(html_path)}
    log.info(
        "metrics (%s users evaluated, split %s):\n%s",
        {m: int(v.get("users_evaluated", 0)) for m, v in doc["models"].items()},
        doc["split"].get("kind"),
        format_table(doc["models"], summary_columns(doc["ks"], doc["k"])),
    )
    log.info("wrote %s and %s", json_path, html_path)
    if cfg.tracking.enabled:
        from recsys_spark.tracking import log_to_mlflow

        flat = {f"{m}.{k}": v for m, values in doc["models"].items() for k, v in values.items()}
        params = {**{f"split.{k}": v for k, v in doc["split"].items() if k != "summary"}}
        mlflow_run = log_to_mlflow(
            cfg.tracking,
            metrics=flat,
            params={**params, "ks": doc["ks"], "k": doc["k"], "eval_run_id": doc["run_id"]},
            artifacts=[json_path, html_path],
            run_name="evaluate",
        )
        doc["report"]["mlflow_run_id"] = mlflow_run


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="only split and write eval_train, eval_test and <root>/holdout/interactions",
    )
    args, cfg = parse_job_args(parser, argv)
    spark = get_spark(cfg.spark)
    try:
        run(spark, cfg, prepare=args.prepare)
    except MissingInputError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
