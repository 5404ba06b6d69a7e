"""Business rules: availability, exclusions and category caps on any lists frame."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.rules import (
    AVAILABILITY,
    CATEGORY_CAP,
    EXCLUSIONS,
    NO_RULES,
    Rules,
    apply_rules,
    eligible_items,
    filtered,
    item_status,
    judge,
    load_rules,
    removed_counts,
    removed_counts_per,
)
from recsys_spark.catalog.schemas import EXCLUSIONS as EXCLUSIONS_SCHEMA
from recsys_spark.catalog.schemas import ITEMS
from recsys_spark.config import RulesConfig, StorageConfig
from recsys_spark.models.fallback import recommend_under_rules

RUN = date(2026, 4, 30)
LISTS = "user_id string, item_id string, rank int, score double"


def catalogue(spark, rows):
    """rows: (item, categories, from, until, active)."""
    full = [(i, None, c, f, u, a, {}, "b", None) for i, c, f, u, a in rows]
    return spark.createDataFrame(full, ITEMS)


def rules_for(spark, rows, excluded=(), **cfg) -> Rules:
    items = item_status(catalogue(spark, rows), RUN)
    pairs = spark.createDataFrame(list(excluded), "user_id string, item_id string")
    return Rules(RulesConfig(**cfg), items, pairs if excluded else None)


CATALOGUE = [
    ("a", ["x"], None, None, None),
    ("b", ["x"], None, None, False),  # inactive
    ("c", ["y"], datetime(2026, 5, 2), None, True),  # launches after the lists are served
    ("d", ["x", "y"], None, datetime(2026, 4, 30), None),  # withdrawn on the run date
    ("e", ["y"], datetime(2026, 4, 30), datetime(2026, 6, 1), None),
    ("f", ["x"], None, None, None),
    ("g", [], None, None, None),
]


def test_availability_and_exclusions_remove_and_the_rest_is_ranked_again(spark):
    lists = spark.createDataFrame(
        [("u1", i, r, 1.0 / r) for r, i in enumerate("abcdefgz", start=1)], LISTS
    )
    rules = rules_for(spark, CATALOGUE, excluded=[("u1", "f")])
    expected = spark.createDataFrame(
        [("u1", "a", 1, 1.0), ("u1", "e", 2, 0.2), ("u1", "g", 3, 1 / 7), ("u1", "z", 4, 0.125)],
        LISTS,
    )
    out = apply_rules(lists, rules, n=10)
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
    counts = removed_counts(judge(lists, rules, 10))
    assert counts == {AVAILABILITY: 3, EXCLUSIONS: 1, CATEGORY_CAP: 0}
    blocked = rules_for(spark, CATALOGUE, unknown_items="block")
    assert "z" not in {r[C.ITEM_ID] for r in apply_rules(lists, blocked, n=10).collect()}


def test_the_category_cap_keeps_the_best_items_of_each_category(spark):
    lists = spark.createDataFrame(
        [("u1", i, r, 0.0) for r, i in enumerate("adefga", start=1)][:5]
        + [("u2", "f", 1, 0.0), ("u2", "a", 2, 0.0)],
        LISTS,
    )
    rows = [(i, c, None, None, None) for i, c, *_ in CATALOGUE]  # every item available
    rules = rules_for(spark, rows, max_per_category=1, availability=False)
    out = {(r[C.USER_ID], r[C.RANK]): r[C.ITEM_ID] for r in apply_rules(lists, rules, 3).collect()}
    # u1: a (x) kept; d (x, y) capped by x; e (y) kept; f (x) capped; g (none) kept.
    assert out == {("u1", 1): "a", ("u1", 2): "e", ("u1", 3): "g", ("u2", 1): "f"}
    assert removed_counts(judge(lists, rules, 3))[CATEGORY_CAP] == 3
    # several judged frames counted in one action, each as if alone
    other = spark.createDataFrame(
        [("u1", i, r, 1.0 / r) for r, i in enumerate("abcdefgz", start=1)], LISTS
    )
    by_model = removed_counts_per(
        {"capped": judge(lists, rules, 3), "other": judge(other, rules_for(spark, CATALOGUE), 10)}
    )
    assert by_model == {
        "capped": {AVAILABILITY: 0, EXCLUSIONS: 0, CATEGORY_CAP: 3},
        "other": {AVAILABILITY: 3, EXCLUSIONS: 0, CATEGORY_CAP: 0},
    }


def test_rules_off_change_nothing(spark):
    lists = spark.createDataFrame([("u1", "b", 1, 0.5), ("u1", "a", 2, 0.1)], LISTS)
    off = rules_for(spark, CATALOGUE, availability=False, exclusions=False)
    assert not off.active and off.depth(10) == 10
    assert_df_equality(apply_rules(lists, off, 10), lists)
    assert_df_equality(apply_rules(lists, NO_RULES, 10), lists)
    assert_df_equality(filtered(lists, NO_RULES), lists)


def test_eligible_items_keep_the_available_ones(spark):
    popular = spark.createDataFrame(
        [(i, 9.0 - k, k + 1) for k, i in enumerate("abcdefgz")],
        "item_id string, score double, rank int",
    )
    rules = rules_for(spark, CATALOGUE)
    got = sorted((r[C.RANK], r[C.ITEM_ID]) for r in eligible_items(popular, rules).collect())
    assert got == [(1, "a"), (2, "e"), (3, "f"), (4, "g"), (5, "z")]  # ranked without gaps


def _oracle(cands, status, excluded, cap, n):
    """A plain-Python statement of the rules for one user's ranked candidates."""
    out, counts = [], {}
    for item in cands:
        available, cats = status.get(item, (True, []))
        if not available or item in excluded:
            continue
        if cap and any(counts.get(c, 0) >= cap for c in cats):
            continue
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
        out.append(item)
        if len(out) == n:
            break
    return out


@pytest.mark.parametrize("cap", [0, 1, 2])
def test_random_catalogues_and_lists_match_a_plain_statement_of_the_rules(spark, cap):
    rng = np.random.default_rng(cap)
    cats = ["k1", "k2", "k3", "k4"]
    items, lists, excluded, status = [], [], [], {}
    for case in range(25):  # 25 random cases in one frame: item and user ids carry the case
        for j in range(12):
            item = f"c{case}i{j}"
            mine = list(rng.choice(cats, rng.integers(0, 3), replace=False))
            active = bool(rng.random() > 0.25)
            items.append((item, mine, None, None, active))
            status[item] = (active, mine)
        for u in range(3):
            user = f"c{case}u{u}"
            order = rng.permutation(12)[: rng.integers(1, 12)]
            lists += [(user, f"c{case}i{j}", r + 1, 0.0) for r, j in enumerate(order)]
            excluded += [(user, f"c{case}i{j}") for j in rng.choice(12, 2, replace=False)]
    rules = rules_for(spark, items, excluded=excluded, max_per_category=cap)
    frame = spark.createDataFrame(lists, LISTS)
    got = {}
    for r in apply_rules(frame, rules, n=4).collect():
        got.setdefault(r[C.USER_ID], {})[r[C.RANK]] = r[C.ITEM_ID]
    by_user = {}
    for user, item, rank, _ in lists:
        by_user.setdefault(user, []).append((rank, item))
    for user, ranked in by_user.items():
        want = _oracle(
            [i for _, i in sorted(ranked)],
            status,
            {i for u, i in excluded if u == user},
            cap,
            4,
        )
        listed = [got.get(user, {})[k] for k in sorted(got.get(user, {}))]
        assert listed == want, user


def test_the_fallback_under_rules_fills_every_list_with_eligible_items(spark):
    model = spark.createDataFrame([("u1", "b", 1, 0.9), ("u1", "a", 2, 0.5)], LISTS)
    users = spark.createDataFrame([("u1",), ("u2",)], "user_id string")
    seen = spark.createDataFrame([("u1", "g"), ("u2", "a")], "user_id string, item_id string")
    popular = spark.createDataFrame(
        [(i, 100.0 - k, k + 1) for k, i in enumerate("bacdefg")],
        "item_id string, score double, rank int",
    )
    rules = rules_for(spark, CATALOGUE, excluded=[("u2", "e")], max_per_category=1)
    out = recommend_under_rules(model, users, seen, popular, rules, n=3)
    lists = {}
    for r in out.collect():
        lists.setdefault(r[C.USER_ID], []).append((r[C.RANK], r[C.ITEM_ID], r[C.SOURCE]))
    # Eligible by popularity: a, e, f, g (b inactive, c not launched, d withdrawn).
    # u1: the model's a (x); then e (y); f (x) is capped; g is seen: two items in all.
    # u2: a is seen, e excluded: f (x), g (no category).
    assert sorted(lists["u1"]) == [(1, "a", "model"), (2, "e", "popularity")]
    assert sorted(lists["u2"]) == [(1, "f", "popularity"), (2, "g", "popularity")]


def test_load_rules_reads_the_tables_as_of_the_run_date(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    assert not load_rules(spark, RulesConfig(), storage, RUN).active  # no tables: nothing
    catalogue(spark, CATALOGUE).write.format("delta").save(storage.table(tables.ITEMS))
    excl = [
        ("u1", "a", None, "b", None),
        ("u1", "e", date(2026, 4, 29), "b", None),  # expired before the run date
        ("u2", "f", date(2026, 4, 30), "b", None),  # in force through the run date
    ]
    spark.createDataFrame(excl, EXCLUSIONS_SCHEMA).write.format("delta").save(
        storage.table(tables.EXCLUSIONS)
    )
    rules = load_rules(spark, RulesConfig(), storage, RUN)
    assert rules.active and rules.lineage["items_version"] == 0
    pairs = sorted((r[0], r[1]) for r in rules.excluded.collect())
    assert pairs == [("u1", "a"), ("u2", "f")]
    available = {r[C.ITEM_ID] for r in rules.items.filter(F.col("_available")).collect()}
    assert available == {"a", "e", "f", "g"}
    off = load_rules(spark, RulesConfig(availability=False, exclusions=False), storage, RUN)
    assert not off.active


def test_with_a_catalogue_and_every_rule_off_the_served_lists_are_unchanged(spark):
    from recsys_spark.models.fallback import recommend_with_fallback

    model = spark.createDataFrame(
        [("u1", "b", 1, 0.9), ("u1", "a", 2, 0.5), ("u2", "f", 1, 0.4)], LISTS
    )
    users = spark.createDataFrame([("u1",), ("u2",), ("u3",)], "user_id string")
    seen = spark.createDataFrame([("u1", "g"), ("u2", "a")], "user_id string, item_id string")
    popular = spark.createDataFrame(
        [(i, 100.0 - k, k + 1) for k, i in enumerate("bacdefg")],
        "item_id string, score double, rank int",
    )
    # What load_rules returns for a lake with both tables and every rule off (its test
    # above checks that): nothing to apply.
    off = Rules(RulesConfig(availability=False, exclusions=False, max_per_category=0))
    assert not off.active
    assert_df_equality(
        recommend_under_rules(model, users, seen, popular, off, n=3),
        recommend_with_fallback(model, users, seen, popular, n=3),
        ignore_row_order=True,
    )
