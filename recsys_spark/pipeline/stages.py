"""The stages of one night, one method each, in the order `run_night` runs them.

`Night` keeps what a stage hands to the next (the champion, the blend weight, the gate's
decision, table versions), so a notebook can run and inspect the stages one at a time:

    night = Night(spark, cfg, date(2026, 4, 30))
    night.ingest(); night.snapshot(); night.holdout_models(); night.candidates()
    night.evaluation(); night.gate(); night.final_models(); night.publish()

Working tables live under `<root>/nightly/run_date=D/` (and its `holdout/` child): a
rerun of the date overwrites them; only `publish` writes what serving reads.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.content import ContentSource, load_categories, load_content
from recsys_spark.catalog.display import example_users
from recsys_spark.catalog.ingest import ingest_catalog
from recsys_spark.catalog.rules import NO_RULES, Rules, apply_rules, load_rules
from recsys_spark.config import AlsConfig, AppConfig, StorageConfig
from recsys_spark.errors import (
    BatchRefusedError,
    ConfigError,
    MissingInputError,
    ReconciliationError,
    SourceError,
)
from recsys_spark.evaluation.model_eval import evaluate_lists, most_popular_lists
from recsys_spark.evaluation.offline import report_folder, write_report
from recsys_spark.evaluation.report import write_html, write_metrics_json
from recsys_spark.faults import failpoint
from recsys_spark.ingest.runner import run_ingest
from recsys_spark.io import delta
from recsys_spark.logs import get_logger
from recsys_spark.models.affinity import user_item_affinity
from recsys_spark.models.hybrid import blend_ranked_lists
from recsys_spark.models.ranker import NoTrainingSignal
from recsys_spark.pipeline import inputs, schedule
from recsys_spark.pipeline.champion import (
    choose_champion,
    metric_cutoff,
    tune_blend_weight,
    validation_scores,
)
from recsys_spark.pipeline.fits import (
    final_lists,
    fit_als_lists,
    fit_ease_lists,
    fit_item_lists,
    night_models,
)
from recsys_spark.pipeline.gate import GateDecision, quality_gate
from recsys_spark.pipeline.holdout import (
    ROLE,
    TEST,
    VALIDATION,
    check_holdout,
    chronological_holdout,
    events_as_of,
    holdout_counts,
    holdout_cut,
)
from recsys_spark.pipeline.lineage import NightTracker
from recsys_spark.pipeline.maintain import last_maintained, maintain_lake, maintenance_due
from recsys_spark.pipeline.publish import (
    Publication,
    last_published,
    publish,
    withdraw_unfinished,
)
from recsys_spark.pipeline.ranking import NightRanker, holdout_ranker_lists

log = get_logger(__name__)
ALS, HYBRID, RANKER = tables.ALS, tables.HYBRID, tables.RANKER
STAGES = (
    "ingest",
    "snapshot",
    "holdout_models",
    "candidates",
    "evaluation",
    "gate",
    "final_models",
    "publish",
)


def night_report_folder(cfg: AppConfig, run_date: date) -> Path:
    """The night's report folder: `<root>/<nightly.report_dir>/<date>` (see report_folder)."""
    return report_folder(cfg.storage, f"{cfg.nightly.report_dir}/{run_date}")


def report_files(cfg: AppConfig, run_date: date) -> dict[str, Path]:
    """The night's metrics.json and report.html."""
    folder = night_report_folder(cfg, run_date)
    return {"metrics_json": folder / "metrics.json", "html": folder / "report.html"}


class Night:
    """One run date's stages; each method is one stage (a child run when tracking is on)."""

    def __init__(
        self,
        spark: SparkSession,
        cfg: AppConfig,
        run_date: date,
        tracker: NightTracker | None = None,
    ) -> None:
        self.spark, self.cfg, self.run_date = spark, cfg, run_date
        self.tracker = tracker or NightTracker(cfg, log)
        self.run_id = self.tracker.run_id or f"nightly-{run_date}-{uuid.uuid4().hex[:8]}"
        self.storage = StorageConfig(
            root=cfg.storage.table(f"{tables.NIGHTLY}/run_date={run_date}")
        )
        self.holdout = StorageConfig(root=self.storage.table(tables.HOLDOUT))
        self.cut = holdout_cut(run_date, cfg.nightly.holdout_days)
        self.versions: dict[str, int] = {}
        self.als: AlsConfig = cfg.als
        self.scores: dict[str, float] = {}
        self.skipped: dict[str, str] = {}  # model -> why the holdout fit skipped it
        self.champion = ""
        self.hybrid_weight = float("nan")
        self.ranker: NightRanker | None = None
        self.rules: Rules = NO_RULES
        self.content: ContentSource | None = None  # the catalogue of new items' neighbours
        self.categories: DataFrame | None = None  # the catalogue's item categories (ranker)
        self.doc: dict[str, Any] = {}
        self.decision: GateDecision | None = None
        self.published: Publication | None = None

    # ------------------------------------------------------------------ stages

    def ingest(self) -> None:
        """New raw files into `interactions` (run_ingest; files seen before are skipped)."""
        with self.tracker.stage("ingest") as m:
            report = run_ingest(self.spark, self.cfg.ingest, self.cfg.storage)
            m.update(
                rows_read=report.rows_read,
                rows_inserted=report.rows_inserted,
                rows_quarantined=report.rows_quarantined,
                files_failed=report.files_failed,
                files_parked=len(report.files_parked),
                files_ignored=len(report.files_ignored),
            )
            m.update(self._ingest_catalog())
        failpoint("nightly.after_ingest")

    def _ingest_catalog(self) -> dict[str, float]:
        """MERGE the configured catalogue files. A file a user must fix (refused, missing,
        unreadable) leaves its table at its last version and the night goes on with it:
        logged as an error and counted in `catalog_failed`."""
        cat = self.cfg.catalog
        if not (cat.items.source or cat.exclusions.source):
            return {}
        try:
            reports = ingest_catalog(self.spark, cat, self.cfg.storage)
        except (BatchRefusedError, ConfigError, ReconciliationError, SourceError) as exc:
            log.error("catalogue ingest failed; tonight uses the last good catalogue: %s", exc)
            self.tracker.set_tags({"catalog_ingest_error": str(exc)[:500]})
            return {"catalog_failed": 1.0}
        out = {"catalog_failed": 0.0}
        for r in reports:
            out.update({f"{r.kind}_inserted": r.inserted, f"{r.kind}_updated": r.updated})
            out[f"{r.kind}_quarantined"] = r.rows_quarantined
        return out

    def snapshot(self) -> None:
        """Freeze the events up to the run date and split the chronological holdout."""
        with self.tracker.stage("snapshot") as m:
            source = self.cfg.storage.table(tables.INTERACTIONS)
            newest = delta.table_version(self.spark, source)
            if newest is None:
                raise MissingInputError(f"no interactions table at {source}")
            raw, version, pinned = self._pinned_input(source, newest)
            self.versions[f"input.{tables.INTERACTIONS}"] = version
            self.tracker.set_tags({"input_pinned_by_first_attempt": str(pinned).lower()})
            m.update(interactions_version=version, input_pinned=float(pinned))
            self._write(events_as_of(raw, self.run_date), self.storage.table(tables.INTERACTIONS))
            train, held = chronological_holdout(
                self._read(self.storage.table(tables.INTERACTIONS)),
                cut=self.cut,
                validation_share=self.cfg.nightly.validation_share,
                seed=self.cfg.evaluation.seed,
            )
            self._write(train, self.holdout.table(tables.INTERACTIONS))
            self._write(held, self.storage.table(tables.HOLDOUT_PAIRS))
            m.update(
                holdout_counts(
                    self._read(self.storage.table(tables.INTERACTIONS)),
                    self._read(self.holdout.table(tables.INTERACTIONS)),
                    self._read(self.storage.table(tables.HOLDOUT_PAIRS)),
                )
            )
            check_holdout(m, self.run_date, self.cut)
            self.rules = load_rules(self.spark, self.cfg.rules, self.cfg.storage, self.run_date)
            for name in ("items", "exclusions"):
                version = self.rules.lineage.get(f"{name}_version")
                if version is not None:
                    self.versions[f"input.{name}"] = version
            self.tracker.set_tags({f"rules.{k}": str(v) for k, v in self.rules.lineage.items()})
            items_version = self.rules.lineage.get("items_version")
            self.content = load_content(
                self.spark, self.cfg.catalog, self.cfg.storage, version=items_version
            )
            rk = self.cfg.ranker
            if rk.enabled and "categories" in rk.features:
                self.categories = load_categories(
                    self.spark, self.cfg.storage, version=items_version
                )

    def _pinned_input(self, source: str, newest: int) -> tuple[DataFrame, int, bool]:
        """`interactions` at the version this date's first attempt read (a rerun), or at
        `newest`, recorded as the date's input (a first attempt)."""
        pinned = inputs.pinned_version(self.spark, self.cfg.storage, self.run_date)
        if pinned is None:
            inputs.pin_version(self.spark, self.cfg.storage, self.run_date, newest, self.run_id)
            return delta.read_table(self.spark, source, version=newest), newest, False
        try:
            raw = delta.read_table(self.spark, source, version=pinned)
        except Exception as exc:  # noqa: BLE001 - vacuumed away: the newest is all there is
            log.warning(
                "interactions version %d, read by the first attempt of %s, is gone (%s); "
                "reading version %d",
                pinned,
                self.run_date,
                str(exc).splitlines()[0][:200],
                newest,
            )
            return delta.read_table(self.spark, source, version=newest), newest, False
        if pinned != newest:
            log.info(
                "rerun of %s: interactions read at version %d, as its first attempt did; "
                "the %d newer versions wait for the next night",
                self.run_date,
                pinned,
                newest - pinned,
            )
        return raw, pinned, True

    def holdout_models(self) -> None:
        """Every model fitted on the holdout's training side, lists `candidate_depth` deep
        for the holdout's users."""
        with self.tracker.stage("holdout_models") as m:
            last = schedule.last_best(
                self.spark,
                self.cfg.storage.table(tables.ALS_BEST_PARAMS),
                on_or_before=self.run_date,
            )
            als, tuned = schedule.als_for_night(
                self.cfg.als, last, self.run_date, self.cfg.nightly.tune_every_days
            )
            origin = "tuning tonight" if tuned else (f"tuned {last.tuned_on}" if last else "config")
            log.info(
                "ALS: rank %d, reg_param %g, alpha %g (%s)",
                als.rank,
                als.reg_param,
                als.alpha,
                origin,
            )
            depth = self.cfg.nightly.candidate_depth
            # Lists only for the users that validation and test score: the others' lists
            # would never be read.
            held = self._read(self.storage.table(tables.HOLDOUT_PAIRS))
            held_users = held.select(C.USER_ID).distinct()
            fit_item_lists(
                self.spark,
                self.cfg,
                self.holdout,
                depth,
                run_id=self.run_id,
                serve=held_users,
                content=self.content,
            )
            als_run = fit_als_lists(
                self.spark, self.cfg, self.holdout, als, depth, serve=held_users
            )
            if self.cfg.ease.enabled:
                ease = fit_ease_lists(
                    self.spark, self.cfg, self.holdout, depth, run_id=self.run_id, serve=held_users
                )
                if ease.skipped:
                    self.skipped[tables.EASE] = ease.skipped
                m.update(ease_items=ease.items, ease_weights=ease.weights)
            fitted = als_run.params
            if tuned:
                best = schedule.BestParams(
                    self.run_date, fitted.rank, fitted.reg_param, fitted.alpha
                )
                ndcg = max(
                    (t.get("ndcg_at_10", float("nan")) for t in als_run.tuning), default=None
                )
                schedule.record_best(
                    self.spark,
                    self.cfg.storage.table(tables.ALS_BEST_PARAMS),
                    best,
                    validation_ndcg=ndcg,
                    run_id=self.run_id,
                )
            self.als = replace(
                als,
                rank=fitted.rank,
                reg_param=fitted.reg_param,
                alpha=fitted.alpha,
                tuning=replace(als.tuning, enabled=False),
            )
            m.update(
                tuned=float(tuned),
                als_rank=fitted.rank,
                als_reg_param=fitted.reg_param,
                als_alpha=fitted.alpha,
            )
        failpoint("nightly.after_holdout_models")

    def candidates(self) -> None:
        """The hybrid's weight, the learned ranker (trained on the validation users, scored
        on them out of fold) and the champion, all chosen on the validation users."""
        nc = self.cfg.nightly
        k = metric_cutoff(nc.gate_metric, self.cfg.evaluation.k)
        validation = self._held(VALIDATION)
        with self.tracker.stage("candidates") as m:
            lists = self.holdout_lists()
            ranked = self._holdout_ranker(lists, validation) if self.cfg.ranker.enabled else None
            if self.ranker is not None:
                gain = self.ranker.model.importance
                m.update({f"ranker_gain.{feature}": v for feature, v in gain.items()})
            als, items = lists[ALS], lists[tables.item_model(nc.hybrid_measure)]
            self.hybrid_weight, by_weight = tune_blend_weight(
                als,
                items,
                validation,
                weights=nc.hybrid_weights,
                depth=nc.candidate_depth,
                metric=nc.gate_metric,
                k=k,
            )
            hybrid = blend_ranked_lists(
                als,
                items,
                weight=self.hybrid_weight,
                depth=nc.candidate_depth,
                n=self._list_depth(),
            )
            self._write(hybrid, self.storage.table(tables.HOLDOUT_HYBRID))
            lists[HYBRID] = self._read(self.storage.table(tables.HOLDOUT_HYBRID))
            if ranked is not None:
                lists[RANKER] = ranked
            depth = self._eval_depth()
            # On the lists the rules leave, as they would be served; only the validation
            # users' lists are judged (the rules' cost grows with the rows they read).
            val_users = validation.select(C.USER_ID).distinct()
            judged = {
                model: apply_rules(rows.join(val_users, C.USER_ID, "left_semi"), self.rules, depth)
                for model, rows in lists.items()
            }
            self.scores = validation_scores(judged, validation, metric=nc.gate_metric, k=k)
            self.champion = choose_champion(self.scores)
            m.update({f"validation.{name}": v for name, v in self.scores.items()})
            m.update({f"hybrid_weight_{w:g}": v for w, v in by_weight.items()})
            m.update(hybrid_weight=self.hybrid_weight)
        log.info(
            "champion on validation: %s (%s %.4f)",
            self.champion,
            nc.gate_metric,
            self.scores[self.champion],
        )
        self.tracker.set_tags({"champion": self.champion})

    def evaluation(self) -> None:
        """Every model and the most-popular baseline on the test users: metrics.json, HTML."""
        ev = self.cfg.evaluation
        with self.tracker.stage("evaluation") as m:
            train = user_item_affinity(self._read(self.holdout.table(tables.INTERACTIONS))).cache()
            test = self._held(TEST).cache()
            users = test.select(C.USER_ID).distinct()
            deep = self._list_depth()  # the rules cut them to `depth`
            lists = {tables.MOST_POPULAR: most_popular_lists(train, users, n=deep)}
            lists.update(
                {  # the test users' lists: coverage and diversity over the same users
                    name: rows.filter(F.col(C.RANK) <= deep).join(users, C.USER_ID, "left_semi")
                    for name, rows in self.holdout_lists(with_combined=True).items()
                }
            )
            self.doc = evaluate_lists(
                lists,
                train,
                test,
                ev,
                ks=self._eval_ks(),
                run_id=self.run_id,
                split={
                    "kind": "chronological",
                    "cut": self.cut.isoformat(),
                    "run_date": self.run_date.isoformat(),
                    "role": TEST,
                    "holdout_days": self.cfg.nightly.holdout_days,
                },
                table_paths={
                    "holdout_train": self.holdout.table(tables.INTERACTIONS),
                    "holdout_pairs": self.storage.table(tables.HOLDOUT_PAIRS),
                },
                rules=self.rules,
                cold_min_interactions=self.cfg.catalog.cold_min_interactions,
            )
            if self.ranker is not None:
                self.doc["ranker"] = {
                    "sources": list(self.ranker.sources),
                    "features": list(self.ranker.model.features),
                    "importance_gain": self.ranker.model.importance,
                    "train_users": self.ranker.model.train_users,
                    "train_rows": self.ranker.model.train_rows,
                }
            self.doc["validation"] = {
                "metric": self.cfg.nightly.gate_metric,
                "scores": self.scores,
                "champion": self.champion,
                "hybrid_weight": self.hybrid_weight,
            }
            write_report(self.doc, night_report_folder(self.cfg, self.run_date), self.cfg.tracking)
            train.unpersist()
            test.unpersist()
            metric = self.cfg.nightly.gate_metric
            m.update(
                {
                    f"{name}.{metric}": values.get(metric, float("nan"))
                    for name, values in self.doc["models"].items()
                }
            )
            for name, values in self.doc.get("cold_items", {}).get("models", {}).items():
                m.update({f"{name}.{key}": v for key, v in values.items() if "_at_" in key})

    def gate(self) -> GateDecision:
        """Compare the champion's test metric with the last published night's."""
        nc = self.cfg.nightly
        with self.tracker.stage("gate") as m:
            value = float(self.doc["models"][self.champion].get(nc.gate_metric, float("nan")))
            last = last_published(self.spark, self.cfg.storage, self.run_date)
            self.decision = quality_gate(
                nc.gate_metric,
                value,
                last.value if last else None,
                tolerance=nc.gate_tolerance,
                previous_date=last.run_date if last else None,
            )
            m.update(passed=float(self.decision.passed), value=value)
        (log.info if self.decision.passed else log.error)("quality gate: %s", self.decision.reason)
        self.tracker.log_metrics(
            {f"test.{nc.gate_metric}": value, "gate_passed": float(self.decision.passed)}
        )
        return self.decision

    def final_models(self) -> None:
        """The champion refitted on the whole snapshot; every user gets `recommend.top_n` items."""
        with self.tracker.stage("final_models") as m:
            lists = final_lists(
                self.spark,
                self.cfg,
                self.storage,
                self.champion,
                als=self.als,
                hybrid_weight=self.hybrid_weight,
                run_id=self.run_id,
                ranker=self.ranker,
                rules=self.rules,
                content=self.content,
            )
            self._write(lists, self.storage.table(tables.FINAL_RECOMMENDATIONS))
            m.update(
                rows=float(self._read(self.storage.table(tables.FINAL_RECOMMENDATIONS)).count())
            )
            self._report_examples()
        failpoint("nightly.before_publish")

    def _report_examples(self) -> None:
        """Add a few users' titled history, lists and reasons to the night's report."""
        items_path = self.cfg.storage.table(tables.ITEMS)
        items = self._read(items_path) if delta.table_exists(self.spark, items_path) else None
        events = self._read(self.storage.table(tables.INTERACTIONS))
        self.doc["examples"] = example_users(
            self._read(self.storage.table(tables.FINAL_RECOMMENDATIONS)),
            user_item_affinity(events),
            items,
        )
        if self.doc.get("models"):  # the evaluation stage wrote the report: add to it
            files = report_files(self.cfg, self.run_date)
            write_metrics_json(self.doc, files["metrics_json"])
            write_html(self.doc, files["html"])

    def withdraw_unfinished(self) -> None:
        """After a refusal: take back what a killed attempt of this date published."""
        if withdraw_unfinished(self.spark, self.cfg.storage, self.run_date):
            log.warning(
                "took back the lists that a killed attempt published for %s without its "
                "publish_log row: the last published night is live again",
                self.run_date,
            )

    def publish(self) -> Publication:
        """`recommendations` (this date), `recommendations_latest` and `publish_log`."""
        if self.decision is None or not self.decision.passed:
            raise RuntimeError("publish runs only after a passed quality gate")
        with self.tracker.stage("publish") as m:
            self.published = publish(
                self.spark,
                self._read(self.storage.table(tables.FINAL_RECOMMENDATIONS)),
                self.cfg.storage,
                run_date=self.run_date,
                run_id=self.run_id,
                metric=self.decision.metric,
                value=self.decision.value,
            )
            m.update(rows=self.published.rows, users=self.published.users)
            self.versions.update({f"output.{k}": v for k, v in self.published.versions.items()})
        return self.published

    def maintain(self) -> None:
        """OPTIMIZE and VACUUM every table of the lake when `maintenance.every_days` have
        passed since the last maintenance (recsys_spark.pipeline.maintain)."""
        every = self.cfg.maintenance.every_days
        last = last_maintained(self.spark, self.cfg.storage)
        if not maintenance_due(last, self.run_date, every):
            log.info("table maintenance not due (last %s, every %d days)", last, every)
            return
        with self.tracker.stage("maintain") as m:
            done = maintain_lake(self.spark, self.cfg.storage, self.cfg.maintenance, self.run_date)
            m.update(
                tables=len(done),
                files_compacted=sum(t.files_compacted for t in done),
                files_deleted=sum(t.files_deleted for t in done),
            )

    # ------------------------------------------------------------------ helpers

    def holdout_lists(self, *, with_combined: bool = False) -> dict[str, DataFrame]:
        """Each model's lists fitted on the holdout's training side (`with_combined`: and
        the hybrid's and the ranker's)."""
        rows = self._read(self.holdout.table(tables.MODEL_RECOMMENDATIONS))
        models = [m for m in night_models(self.cfg) if m not in self.skipped]
        lists = {m: rows.filter(F.col(C.MODEL) == m) for m in models}
        if with_combined:
            lists[HYBRID] = self._read(self.storage.table(tables.HOLDOUT_HYBRID))
            if self.cfg.ranker.enabled and RANKER not in self.skipped:
                lists[RANKER] = self._read(self.storage.table(tables.HOLDOUT_RANKER))
        return lists

    def _holdout_ranker(
        self, lists: dict[str, DataFrame], validation: DataFrame
    ) -> DataFrame | None:
        """Fit the ranker over `lists` and the most-popular list; write its holdout lists.
        None (the ranker skipped, the reason logged) when no validation user's candidates
        hold a held-out item."""
        depth = min(self.cfg.ranker.depth, self.cfg.nightly.candidate_depth)
        train = user_item_affinity(self._read(self.holdout.table(tables.INTERACTIONS)))
        users = self._read(self.storage.table(tables.HOLDOUT_PAIRS)).select(C.USER_ID).distinct()
        sources = {**lists, tables.MOST_POPULAR: most_popular_lists(train, users, n=depth)}
        try:
            ranked, self.ranker = holdout_ranker_lists(
                sources,
                train,
                validation,
                self.cfg.ranker,
                depth=depth,
                n=self._list_depth(),
                seed=self.cfg.evaluation.seed,
                categories=self.categories,
            )
        except NoTrainingSignal as exc:
            self.skipped[RANKER] = str(exc)
            log.warning("learned ranker skipped tonight: %s", exc)
            return None
        rows = ranked.select("*", F.lit(RANKER).alias(C.MODEL), F.lit("model").alias(C.SOURCE))
        self._write(rows, self.storage.table(tables.HOLDOUT_RANKER))
        return self._read(self.storage.table(tables.HOLDOUT_RANKER))

    def working_versions(self) -> dict[str, int]:
        """The Delta versions of this night's input and output tables (for lineage)."""
        out = dict(self.versions)
        for name in (tables.INTERACTIONS, tables.HOLDOUT_PAIRS, tables.FINAL_RECOMMENDATIONS):
            version = delta.table_version(self.spark, self.storage.table(name))
            if version is not None:
                out[f"night.{name}"] = version
        return out

    def _held(self, role: str) -> DataFrame:
        return self._read(self.storage.table(tables.HOLDOUT_PAIRS)).filter(F.col(ROLE) == role)

    def _eval_ks(self) -> tuple[int, ...]:
        """The report's cut-offs: `evaluation.ks`, and the gate metric's, read from it."""
        gate_k = metric_cutoff(self.cfg.nightly.gate_metric, self.cfg.evaluation.k)
        return tuple(sorted({*self.cfg.evaluation.ks, gate_k}))

    def _eval_depth(self) -> int:
        return max(max(self._eval_ks()), self.cfg.evaluation.k)

    def _list_depth(self) -> int:
        """How deep the combined models' holdout lists are: the evaluation's depth, more
        while business rules can remove candidates (at most `candidate_depth`)."""
        deep = self.rules.depth(self._eval_depth())
        return max(self._eval_depth(), min(deep, self.cfg.nightly.candidate_depth))

    def _read(self, path: str) -> DataFrame:
        return delta.read_table(self.spark, path)

    def _write(self, df: DataFrame, path: str) -> None:
        delta.overwrite(df, path)
