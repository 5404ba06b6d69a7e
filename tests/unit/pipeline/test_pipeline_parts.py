"""The nightly's building blocks: hybrid blend, holdout, champion, gate, schedule, lock, publish."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import RankerConfig, StorageConfig, load_config
from recsys_spark.io import delta
from recsys_spark.models.hybrid import blend_ranked_lists
from recsys_spark.pipeline import fits, ranking, schedule
from recsys_spark.pipeline.champion import choose_champion, metric_cutoff, tune_blend_weight
from recsys_spark.pipeline.gate import quality_gate
from recsys_spark.pipeline.holdout import (
    ROLE,
    TEST,
    VALIDATION,
    chronological_holdout,
    events_as_of,
    holdout_cut,
)
from recsys_spark.pipeline.lock import LockHeldError, acquire
from recsys_spark.pipeline.publish import last_published, publish, withdraw_unfinished
from recsys_spark.pipeline.ranking import NightRanker

LIST_COLS = [C.USER_ID, C.ITEM_ID, C.RANK, C.SOURCE]


def lists(spark: SparkSession, rows: list[tuple[str, str, int, str]]):
    return spark.createDataFrame(rows, "user_id string, item_id string, rank int, source string")


# ---------------------------------------------------------------- hybrid blend


def reference_blend(a: list[tuple], b: list[tuple], weight: float, depth: int, n: int):
    """Per user: position scores (depth - r + 1) / depth, missing 0, sort (score desc, item)."""
    out = []
    users = sorted({r[0] for r in a} | {r[0] for r in b})
    for user in users:
        sa = {i: (depth - r + 1) / depth for u, i, r, _ in a if u == user and r <= depth}
        sb = {i: (depth - r + 1) / depth for u, i, r, _ in b if u == user and r <= depth}
        src = {}
        for u, i, r, s in a + b:
            if u == user and r <= depth:
                src[i] = "model" if s == "model" or src.get(i) == "model" else "popularity"
        items = set(sa) | set(sb)
        scored = [(weight * sa.get(i, 0.0) + (1 - weight) * sb.get(i, 0.0), i) for i in items]
        scored.sort(key=lambda x: (-x[0], x[1]))
        out += [(user, i, k + 1, s, src[i]) for k, (s, i) in enumerate(scored[:n])]
    return out


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_blend_matches_reference_with_ties_and_sources(spark: SparkSession, weight: float) -> None:
    a = [("u1", "a", 1, "model"), ("u1", "b", 2, "model"), ("u1", "c", 3, "model"),
         ("u2", "x", 1, "popularity"), ("u2", "y", 2, "popularity")]  # fmt: skip
    b = [("u1", "c", 1, "model"), ("u1", "d", 2, "model"), ("u1", "a", 3, "model"),
         ("u1", "z", 9, "model"),  # deeper than depth: ignored
         ("u2", "y", 1, "popularity"), ("u3", "q", 1, "model")]  # fmt: skip
    got = blend_ranked_lists(lists(spark, a), lists(spark, b), weight=weight, depth=3, n=3)
    rows = sorted(
        (r[C.USER_ID], r[C.ITEM_ID], r[C.RANK], round(r[C.SCORE], 12), r[C.SOURCE])
        for r in got.collect()
    )
    want = sorted(
        (u, i, k, round(s, 12), src) for u, i, k, s, src in reference_blend(a, b, weight, 3, 3)
    )
    assert rows == want
    assert all(r[1] != "z" for r in rows)


def test_blend_rejects_bad_weight(spark: SparkSession) -> None:
    empty = lists(spark, [])
    with pytest.raises(ValueError, match="weight"):
        blend_ranked_lists(empty, empty, weight=1.5, depth=3, n=3)


# ---------------------------------------------------------------- holdout


def events_frame(spark: SparkSession, rows: list[tuple[str, str, str]]):
    df = spark.createDataFrame(rows, "user_id string, item_id string, ts string")
    ts = F.to_timestamp("ts")
    return df.select(
        C.USER_ID, C.ITEM_ID, ts.alias(C.EVENT_TS), F.to_date(ts).alias(C.EVENT_DATE),
        F.abs(F.hash(C.USER_ID)).alias(C.USER_IDX), F.abs(F.hash(C.ITEM_ID)).alias(C.ITEM_IDX),
        F.lit(1.0).alias(C.WEIGHT), F.lit("view").alias(C.EVENT_TYPE),
    )  # fmt: skip


def test_holdout_keeps_only_new_pairs_of_known_users(spark: SparkSession) -> None:
    events = events_frame(
        spark,
        [
            ("u1", "a", "2026-03-01 10:00:00"),
            ("u1", "a", "2026-03-20 10:00:00"),  # seen before the cut: not held out
            ("u1", "b", "2026-03-20 10:00:00"),  # new pair: held out
            ("u2", "a", "2026-03-02 10:00:00"),
            ("u2", "c", "2026-03-25 23:59:59"),  # new pair on the run date: held out
            ("u3", "a", "2026-03-21 10:00:00"),  # user unknown before the cut: not held out
            ("u1", "d", "2026-03-26 00:00:00"),  # after the run date: ignored
        ],
    )
    run_date = date(2026, 3, 25)
    cut = holdout_cut(run_date, 10)
    assert cut == datetime(2026, 3, 16)
    train, held = chronological_holdout(
        events_as_of(events, run_date), cut=cut, validation_share=0.5, seed=1
    )
    assert sorted((r[C.USER_ID], r[C.ITEM_ID]) for r in train.collect()) == [
        ("u1", "a"),
        ("u2", "a"),
    ]
    held_rows = {(r[C.USER_ID], r[C.ITEM_ID]): r[ROLE] for r in held.collect()}
    assert set(held_rows) == {("u1", "b"), ("u2", "c")}
    assert set(held_rows.values()) <= {VALIDATION, TEST}


def test_holdout_roles_split_users_by_share(spark: SparkSession) -> None:
    rows = [(f"u{i}", "a", "2026-01-01 00:00:00") for i in range(400)]
    rows += [(f"u{i}", "b", "2026-02-01 00:00:00") for i in range(400)]
    _, held = chronological_holdout(
        events_frame(spark, rows), cut=datetime(2026, 1, 15), validation_share=0.25, seed=3
    )
    roles = held.groupBy(ROLE).agg(F.countDistinct(C.USER_ID).alias("n")).collect()
    share = {r[ROLE]: r["n"] for r in roles}
    assert share[VALIDATION] + share[TEST] == 400
    assert 60 <= share[VALIDATION] <= 140  # ~100 expected from a 25% hash split


# ---------------------------------------------------------------- champion and gate


def test_metric_cutoff_and_champion_ties() -> None:
    assert metric_cutoff("ndcg_at_10", 5) == 10
    assert metric_cutoff("map", 7) == 7
    assert choose_champion({"als": 0.3, "item_jaccard": 0.3, "hybrid": 0.2}) == "als"
    assert choose_champion({"als": float("nan"), "hybrid": 0.1}) == "hybrid"
    with pytest.raises(ValueError, match="no model"):
        choose_champion({"als": float("nan")})


def test_blend_weight_picks_the_list_that_hits(spark: SparkSession) -> None:
    # The first list ranks the relevant item first, the second ranks it last.
    first = lists(spark, [("u1", "hit", 1, "model"), ("u1", "x", 2, "model")])
    second = lists(
        spark, [("u1", "y", 1, "model"), ("u1", "z", 2, "model"), ("u1", "hit", 3, "model")]
    )
    valid = spark.createDataFrame([("u1", "hit")], "user_id string, item_id string")
    best, scores = tune_blend_weight(
        first, second, valid, weights=[0.0, 1.0], depth=3, metric="ndcg_at_1", k=1
    )
    assert best == 1.0
    assert scores[1.0] == pytest.approx(1.0) and scores[0.0] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("value", "previous", "passed"),
    [(0.30, None, True), (0.30, 0.305, True), (0.30, 0.32, False), (0.35, 0.30, True)],
)
def test_quality_gate(value: float, previous: float | None, passed: bool) -> None:
    decision = quality_gate("ndcg_at_10", value, previous, tolerance=0.01)
    assert decision.passed is passed
    assert "ndcg_at_10" in decision.reason


def test_quality_gate_refuses_an_unmeasured_model() -> None:
    assert not quality_gate("ndcg_at_10", math.nan, None, tolerance=1.0).passed


# ---------------------------------------------------------------- tuning schedule


def test_schedule_tunes_when_due_and_reads_the_newest_row(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "best")
    assert schedule.last_best(spark, path, on_or_before=date(2026, 1, 1)) is None
    assert schedule.tuning_due(None, date(2026, 1, 1), 7)
    assert not schedule.tuning_due(None, date(2026, 1, 1), 0)
    for day, rank in ((date(2026, 1, 1), 8), (date(2026, 1, 8), 16)):
        best = schedule.BestParams(day, rank, 0.1, 1.0)
        schedule.record_best(spark, path, best, validation_ndcg=0.2, run_id="r")
    schedule.record_best(  # a rerun of a date replaces its row
        spark,
        path,
        schedule.BestParams(date(2026, 1, 8), 32, 0.3, 2.0),
        validation_ndcg=None,
        run_id="r2",
    )
    assert delta.read_table(spark, path).count() == 2
    last = schedule.last_best(spark, path, on_or_before=date(2026, 1, 10))
    assert (last.rank, last.reg_param, last.alpha) == (32, 0.3, 2.0)
    backfill = schedule.last_best(spark, path, on_or_before=date(2026, 1, 5))
    assert backfill.rank == 8
    assert not schedule.tuning_due(last, date(2026, 1, 14), 7)
    assert schedule.tuning_due(last, date(2026, 1, 15), 7)


# ---------------------------------------------------------------- lock


def test_lock_is_exclusive_and_released(spark: SparkSession, tmp_path: Path) -> None:
    storage = StorageConfig(root=str(tmp_path / "lake"))
    held = acquire(spark, storage, run_date="2026-01-01")
    with pytest.raises(LockHeldError, match="another nightly"):
        acquire(spark, storage, run_date="2026-01-01")
    held.release()
    acquire(spark, storage, run_date="2026-01-02").release()  # free again


def test_lock_of_a_dead_process_is_taken_over(spark: SparkSession, tmp_path: Path) -> None:
    storage = StorageConfig(root=str(tmp_path / "lake"))
    code = (
        "import json, os, socket, sys\n"
        "from recsys_spark.config import StorageConfig\n"
        "from recsys_spark.pipeline import lock\n"
        "uri = StorageConfig(root=sys.argv[1]).table(lock.LOCK_FILE)\n"
        "owner = {'host': socket.gethostname(), 'pid': os.getpid()}\n"
        "lock._LockStore.for_uri(None, uri).create(json.dumps(owner))\n"
    )
    subprocess.run([sys.executable, "-c", code, storage.root], check=True, env=os.environ.copy())
    lock = acquire(spark, storage, run_date="2026-01-01")  # the writer has exited
    lock.release()


# ---------------------------------------------------------------- publish


def published_lists(spark: SparkSession, model: str, users: list[str]):
    rows = [(u, f"i{k}", k, 1.0 / k, model, "model", "run") for u in users for k in (1, 2)]
    return spark.createDataFrame(
        rows, "user_id string, item_id string, rank int, score double, model string, "
        "source string, run_id string",
    )  # fmt: skip


def test_publish_replaces_its_date_and_moves_latest_forward_only(
    spark: SparkSession, tmp_path: Path
) -> None:
    storage = StorageConfig(root=str(tmp_path / "lake"))
    d1, d2 = date(2026, 3, 1), date(2026, 3, 2)
    args = {"metric": "ndcg_at_10"}
    publish(
        spark,
        published_lists(spark, "als", ["u1", "u2"]),
        storage,
        run_date=d1,
        run_id="a",
        value=0.2,
        **args,
    )
    publish(
        spark,
        published_lists(spark, "hybrid", ["u1"]),
        storage,
        run_date=d2,
        run_id="b",
        value=0.3,
        **args,
    )
    hybrid = published_lists(spark, "hybrid", ["u1", "u3"])
    again = publish(spark, hybrid, storage, run_date=d2, run_id="c", value=0.31, **args)
    assert again.latest_moved and again.users == 2
    recs = delta.read_table(spark, storage.table(tables.PUBLISHED_RECOMMENDATIONS))
    per_date = {
        str(r["run_date"]): r["n"]
        for r in recs.groupBy("run_date").agg(F.count("*").alias("n")).collect()
    }
    assert per_date == {"2026-03-01": 4, "2026-03-02": 4}
    latest = delta.read_table(spark, storage.table(tables.RECOMMENDATIONS_LATEST)).toPandas()
    assert set(latest["user_id"]) == {"u1", "u3"} and set(latest["model"]) == {"hybrid"}

    # A backfill of an older date replaces that date but leaves `latest` alone.
    back = publish(spark, published_lists(spark, "als", ["u9"]), storage, run_date=d1, run_id="d",
                   value=0.1, **args)  # fmt: skip
    assert not back.latest_moved
    latest_after = delta.read_table(spark, storage.table(tables.RECOMMENDATIONS_LATEST)).toPandas()
    pd.testing.assert_frame_equal(
        latest.sort_values(["user_id", "rank"]).reset_index(drop=True),
        latest_after.sort_values(["user_id", "rank"]).reset_index(drop=True),
    )
    last = last_published(spark, storage, date(2026, 3, 5))
    assert (last.run_date, last.model, last.value) == (d2, "hybrid", 0.31)
    assert last_published(spark, storage, d2).run_date == d1
    assert last_published(spark, storage, d1) is None


def test_a_killed_publication_is_ignored_by_latest_and_withdrawn_on_refusal(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys_spark.pipeline import publish as publish_module

    storage = StorageConfig(root=str(tmp_path / "lake"))
    d1, d2, d3, d4 = (date(2026, 3, d) for d in (1, 2, 3, 4))
    args = {"metric": "ndcg_at_10", "value": 0.2}

    def killed_at(point: str):  # stands in for a kill -9 at that failpoint
        def fail(name: str) -> None:
            if name == point:
                raise RuntimeError("killed")

        return fail

    def latest_dates() -> set:
        latest = delta.read_table(spark, storage.table(tables.RECOMMENDATIONS_LATEST))
        return {r["run_date"] for r in latest.select("run_date").distinct().collect()}

    publish(spark, published_lists(spark, "als", ["u1"]), storage, run_date=d1, run_id="a", **args)
    monkeypatch.setattr(publish_module, "failpoint", killed_at("publish.after_recommendations"))
    with pytest.raises(RuntimeError, match="killed"):
        publish(spark, published_lists(spark, "als", ["u3"]), storage, run_date=d3, run_id="b",
                **args)  # fmt: skip
    monkeypatch.setattr(publish_module, "failpoint", lambda name: None)
    # d3 was never logged: publishing d2 still moves `latest`.
    moved = publish(spark, published_lists(spark, "als", ["u2"]), storage, run_date=d2,
                    run_id="c", **args)  # fmt: skip
    assert moved.latest_moved and latest_dates() == {d2}

    monkeypatch.setattr(publish_module, "failpoint", killed_at("publish.after_latest"))
    with pytest.raises(RuntimeError, match="killed"):
        publish(spark, published_lists(spark, "als", ["u4"]), storage, run_date=d4, run_id="d",
                **args)  # fmt: skip
    assert latest_dates() == {d4}  # served, not logged
    # The rerun of d4 is refused: d4 is taken back, d2 is live again.
    assert withdraw_unfinished(spark, storage, d4)
    assert latest_dates() == {d2}
    recs = delta.read_table(spark, storage.table(tables.PUBLISHED_RECOMMENDATIONS))
    assert {r["run_date"] for r in recs.select("run_date").distinct().collect()} == {d1, d2, d3}
    # A logged date, or one with nothing left to take back, is left alone.
    assert not withdraw_unfinished(spark, storage, d2)
    assert not withdraw_unfinished(spark, storage, d4)


def test_publish_refuses_two_models(spark: SparkSession, tmp_path: Path) -> None:
    storage = StorageConfig(root=str(tmp_path / "lake"))
    mixed = published_lists(spark, "als", ["u1"]).unionByName(
        published_lists(spark, "hybrid", ["u2"])
    )
    with pytest.raises(ValueError, match="one model"):
        publish(spark, mixed, storage, run_date=date(2026, 3, 1), run_id="x", metric="m", value=0.1)
    assert not delta.table_exists(spark, storage.table(tables.PUBLISHED_RECOMMENDATIONS))


# ---------------------------------------------------------------- final models


@pytest.mark.parametrize(
    "champion", ["als", "hybrid", "item_jaccard", "item_llr", "ease", "ranker"]
)
def test_final_fit_asks_each_runner_for_the_champions_models_only(
    champion: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An ALS champion once asked the similarity config for a measure named "als".
    cfg = load_config(Path(__file__).resolve().parents[3] / "conf" / "local.yml", [])
    calls: list[tuple] = []

    def similarity(spark, sim, recommend, storage, *, top_n, measures, run_id, serve, content):  # type: ignore[no-untyped-def]
        calls.append(("similarity", storage.root, top_n, measures))

    def als(spark, als_cfg, recommend, tracking, storage, *, top_n, serve):  # type: ignore[no-untyped-def]
        calls.append(("als", storage.root, top_n, als_cfg.rank))

    def ease(spark, ease_cfg, recommend, storage, *, top_n, run_id, serve=None):  # type: ignore[no-untyped-def]
        calls.append(("ease", storage.root, top_n, ease_cfg.l2))
        return fits.EaseReport(run_id, 1, 1, 1, {})

    class ListsRead(Exception):
        pass

    def read_table(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ListsRead

    monkeypatch.setattr(fits, "run_similarity", similarity)
    monkeypatch.setattr(fits, "run_als", als)
    monkeypatch.setattr(fits, "run_ease", ease)
    monkeypatch.setattr(fits.delta, "read_table", read_table)
    work = StorageConfig(root="/tmp/night")
    tuned = replace(cfg.als, rank=7)
    ranker = NightRanker(None, ("als", "ease", "item_jaccard", "most_popular"), 30, (7,))  # type: ignore[arg-type]
    with pytest.raises(ListsRead):  # the fits are done when the lists are read back
        fits.final_lists(
            None, cfg, work, champion, als=tuned, hybrid_weight=0.5, run_id="r", ranker=ranker
        )
    n, depth = cfg.recommend.top_n, cfg.nightly.candidate_depth
    expected = {
        "als": [("als", "/tmp/night", n, 7)],
        "hybrid": [
            ("similarity", "/tmp/night", depth, (cfg.nightly.hybrid_measure,)),
            ("als", "/tmp/night", depth, 7),
        ],
        "item_jaccard": [("similarity", "/tmp/night", n, ("jaccard",))],
        "item_llr": [("similarity", "/tmp/night", n, ("llr",))],
        "ease": [("ease", "/tmp/night", n, cfg.ease.l2)],
        "ranker": [  # every model it ranks, as deep as its candidates
            ("similarity", "/tmp/night", 30, fits.night_measures(cfg)),
            ("als", "/tmp/night", 30, 7),
            ("ease", "/tmp/night", 30, cfg.ease.l2),
        ],
    }
    assert calls == expected[champion]


def test_the_nights_ranker_scores_validation_users_out_of_fold(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.models.test_ranker import synthetic

    lists, train, labels = synthetic(spark, 5, n_users=40)
    val_users = [f"u{u:02d}" for u in range(0, 40, 2)]
    validation = labels.filter(F.col(C.USER_ID).isin(val_users))
    trained: list[set[str]] = []
    scored: list[tuple[int, set[str]]] = []
    fit, rank = ranking.fit_ranker, ranking.rank_candidates

    def recording_fit(labelled, names, cfg):  # type: ignore[no-untyped-def]
        trained.append({r[0] for r in labelled.select(C.USER_ID).distinct().collect()})
        return fit(labelled, names, cfg)

    def recording_rank(features, model, *, top_n):  # type: ignore[no-untyped-def]
        users = {r[0] for r in features.select(C.USER_ID).distinct().collect()}
        scored.append((len(trained) - 1, users))
        return rank(features, model, top_n=top_n)

    monkeypatch.setattr(ranking, "fit_ranker", recording_fit)
    monkeypatch.setattr(ranking, "rank_candidates", recording_rank)
    cfg = RankerConfig(num_rounds=20, min_data_in_leaf=3)
    ranked, night_ranker = ranking.holdout_ranker_lists(
        lists, train, validation, cfg, depth=6, n=3, seed=42
    )
    got = ranked.toPandas()
    assert (got.groupby(C.USER_ID).size() == 3).all() and got[C.USER_ID].nunique() == 40
    # Three fits: one per fold, then every validation user for the others.
    assert len(trained) == 3 and trained[2] == set(val_users)
    assert trained[0] | trained[1] == set(val_users) and not trained[0] & trained[1]
    for model, users in scored:  # nobody is scored by a model that learned from them
        assert not users & trained[model]
    assert scored[2][1] == {f"u{u:02d}" for u in range(1, 40, 2)}
    assert night_ranker.sources == ("strong", "weak") and night_ranker.depth == 6


def test_the_nights_ranker_learns_category_match_only_with_a_catalogue(
    spark: SparkSession,
) -> None:
    from tests.unit.models.test_ranker import synthetic

    lists, train, labels = synthetic(spark, 6, n_users=30)
    validation = labels.filter(F.col(C.USER_ID).isin([f"u{u:02d}" for u in range(0, 30, 2)]))
    items = {r[0] for r in train.select(C.ITEM_ID).union(labels.select(C.ITEM_ID)).collect()}
    categories = spark.createDataFrame(
        [(i, [f"g{int(i[1:]) % 3}"]) for i in sorted(items)],
        f"{C.ITEM_ID} string, categories array<string>",
    )
    cfg = RankerConfig(num_rounds=5, min_data_in_leaf=3, features=("ranks", "categories"))
    kw = {"depth": 6, "n": 3, "seed": 42}
    _, plain = ranking.holdout_ranker_lists(lists, train, validation, cfg, **kw)
    _, with_cat = ranking.holdout_ranker_lists(
        lists, train, validation, cfg, categories=categories, **kw
    )
    assert "category_share" not in plain.model.features and plain.categories is None
    assert with_cat.model.features[-1] == "category_share" and with_cat.categories is categories
    final = ranking.final_ranker_lists(lists, train, with_cat, n=3).toPandas()
    assert (final.groupby(C.USER_ID).size() == 3).all()


def test_a_ranker_with_nothing_to_learn_is_skipped_not_fatal(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys_spark.models.ranker import NoTrainingSignal
    from recsys_spark.pipeline import stages

    def nothing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise NoTrainingSignal("no user's candidates hold a held-out item")

    monkeypatch.setattr(stages, "holdout_ranker_lists", nothing)
    cfg = load_config(None, [f"storage.root={tmp_path}", "tracking.enabled=false"])
    night = stages.Night(spark, cfg, date(2026, 3, 1))
    events = events_frame(spark, [("u1", "a", "2026-02-01 10:00:00")])
    monkeypatch.setattr(night, "_read", lambda path: events)
    assert night._holdout_ranker({}, events) is None
    assert night.ranker is None and "held-out item" in night.skipped["ranker"]


def test_night_models_are_als_each_measure_and_ease_when_enabled() -> None:
    cfg = load_config(None, ["similarity.measures=[cosine]", "nightly.hybrid_measure=jaccard"])
    assert fits.night_models(cfg) == ("als", "item_cosine", "item_jaccard", "ease")
    off = load_config(None, ["similarity.measures=[cosine]", "ease.enabled=false"])
    assert fits.night_models(off) == ("als", "item_cosine", "item_jaccard")


def test_night_measures_add_the_hybrids_once() -> None:
    cfg = load_config(None, ["similarity.measures=[cosine,jaccard]", "nightly.hybrid_measure=llr"])
    assert fits.night_measures(cfg) == ("cosine", "jaccard", "llr")
    cfg = load_config(None, ["similarity.measures=[jaccard]", "nightly.hybrid_measure=jaccard"])
    assert fits.night_measures(cfg) == ("jaccard",)


# ---------------------------------------------------------------- pinned inputs


def test_a_date_keeps_the_input_version_its_first_attempt_recorded(
    spark: SparkSession, tmp_path: Path
) -> None:
    from recsys_spark.pipeline import inputs

    storage = StorageConfig(root=str(tmp_path / "lake"))
    d1, d2 = date(2026, 3, 1), date(2026, 3, 2)
    assert inputs.pinned_version(spark, storage, d1) is None
    inputs.pin_version(spark, storage, d1, 7, "first")
    inputs.pin_version(spark, storage, d1, 9, "rerun")  # a rerun never moves the pin
    inputs.pin_version(spark, storage, d2, 9, "next")
    assert inputs.pinned_version(spark, storage, d1) == 7
    assert inputs.pinned_version(spark, storage, d2) == 9
