"""Content neighbours of new items, their blend into item_similarity, the cold-item protocol."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.content import (
    ContentSource,
    blend_content,
    cold_items,
    content_neighbours,
    item_indices,
    item_users,
)
from recsys_spark.config import RecommendConfig, SimilarityConfig, StorageConfig
from recsys_spark.evaluation.model_eval import cold_item_metrics, new_items
from recsys_spark.io import delta
from recsys_spark.similarity.item_models import run_similarity

ITEMS = "item_id string, title string, categories array<string>"
CATALOGUE = [
    ("a", "red wool scarf", ["winter", "scarves"]),
    ("b", "blue wool scarf", ["winter", "scarves"]),
    ("c", "garden hose", ["garden"]),
    ("d", "green wool hat", ["winter"]),
    ("n", "red wool hat", ["winter"]),  # the new item
]


def test_content_neighbours_mean_category_jaccard_and_title_cosine(spark):
    items = spark.createDataFrame(CATALOGUE, ITEMS)
    cold = spark.createDataFrame([("n",)], "item_id string")
    users = spark.createDataFrame([], "item_id string, _users long")
    got = {
        r[C.NEIGHBOUR_ID]: (r[C.RANK], r[C.SCORE])
        for r in content_neighbours(items, cold, users, top_k=3).collect()
    }
    # d shares the category exactly (Jaccard 1) and "wool hat"; a and b share half the
    # categories; c shares nothing and is no neighbour.
    assert set(got) == {"d", "a", "b"}
    assert got["d"][0] == 1 and got["d"][1] > got["a"][1] > got["b"][1] > 0
    # a: Jaccard 1/2; titles share "red" and "wool" (TF-IDF cosine below 1).
    assert 0.25 < got["a"][1] < 0.75
    assert all(0 < s <= 1 for _, s in got.values())


def test_candidates_per_token_are_the_most_popular_and_ties_go_to_popularity(spark):
    items = spark.createDataFrame(
        [("n", "hat", ["winter"])] + [(f"w{k}", "hat", ["winter"]) for k in range(5)], ITEMS
    )
    cold = spark.createDataFrame([("n",)], "item_id string")
    users = spark.createDataFrame([("w1", 9), ("w3", 7), ("w4", 1)], "item_id string, _users long")
    got = content_neighbours(items, cold, users, top_k=5, per_token=2).collect()
    # Every candidate matches n perfectly: only the two most popular are candidates.
    assert [(r[C.NEIGHBOUR_ID], r[C.RANK]) for r in got] == [("w1", 1), ("w3", 2)]


def _reference_neighbours(catalogue, cold, used, *, top_k, per_token):
    """content_neighbours by hand: TF-IDF titles, category Jaccard, candidates per token."""
    titles = {
        i: [w for w in re.split(r"[^a-z0-9]+", t.lower()) if len(w) >= 2] for i, t, _ in catalogue
    }
    cats = {i: list(c) for i, _, c in catalogue}
    df = Counter(w for words in titles.values() for w in set(words))
    weights = {}
    for i, words in titles.items():
        raw = {w: n * math.log(len(catalogue) / df[w]) for w, n in Counter(words).items()}
        raw = {w: v for w, v in raw.items() if v > 0}
        norm = math.sqrt(sum(v * v for v in raw.values()))
        weights[i] = {w: v / norm for w, v in raw.items()}

    def candidates(token_of):
        by_token = {}
        for i in sorted(token_of, key=lambda i: (-used.get(i, 0), i)):
            for t in token_of[i]:
                by_token.setdefault(t, []).append(i)
        return {t: set(ids[:per_token]) for t, ids in by_token.items()}

    word_cands, cat_cands = candidates(weights), candidates(cats)
    out = {}
    for c in cold:
        scores = {}
        for j in titles:
            if j == c:
                continue
            cos = sum(
                v * weights[j][w] for w, v in weights[c].items() if j in word_cands.get(w, ())
            )
            shared = sum(1 for k in cats[c] if k in cats[j] and j in cat_cands[k])
            jac = shared / (len(cats[c]) + len(cats[j]) - shared) if shared else 0.0
            if (cos + jac) / 2 > 0:
                scores[j] = (cos + jac) / 2
        best = sorted(scores, key=lambda j: (-round(scores[j], 12), -used.get(j, 0), j))[:top_k]
        out.update({(c, j): (r + 1, scores[j]) for r, j in enumerate(best)})
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_content_neighbours_match_a_reference_by_hand(spark, seed):
    rng = random.Random(seed)
    vocab, genres = ["red", "blue", "wool", "hat", "scarf", "big", "x1"], ["a", "b", "c", "d"]
    catalogue = [
        (
            f"i{k:02d}",
            " ".join(rng.choices(vocab, k=rng.randint(1, 4))),
            rng.sample(genres, rng.randint(1, 3)),
        )
        for k in range(40)
    ]
    cold = [f"i{k:02d}" for k in range(0, 40, 5)]
    used = {f"i{k:02d}": rng.choice([0, 1, 1, 3, 7]) for k in range(40)}
    got = content_neighbours(
        spark.createDataFrame(catalogue, ITEMS),
        spark.createDataFrame([(c,) for c in cold], "item_id string"),
        spark.createDataFrame(list(used.items()), "item_id string, _users long"),
        top_k=6,
        per_token=9,
    ).collect()
    want = _reference_neighbours(catalogue, cold, used, top_k=6, per_token=9)
    assert {(r[C.ITEM_ID], r[C.NEIGHBOUR_ID]): r[C.RANK] for r in got} == {
        k: rank for k, (rank, _) in want.items()
    }
    for r in got:
        assert r[C.SCORE] == pytest.approx(want[(r[C.ITEM_ID], r[C.NEIGHBOUR_ID])][1], abs=1e-9)


def test_cold_items_are_those_with_few_users_and_unseen_items_get_fresh_indices(spark):
    items = spark.createDataFrame(CATALOGUE, ITEMS)
    events = spark.createDataFrame(
        [("u1", "a", 0), ("u2", "a", 0), ("u1", "b", 1), ("u3", "n", 4)],
        "user_id string, item_id string, item_idx int",
    )
    cold = sorted(r[0] for r in cold_items(items, item_users(events), 2).collect())
    assert cold == ["b", "c", "d", "n"]
    idx = {r[C.ITEM_ID]: r[C.ITEM_IDX] for r in item_indices(events, items).collect()}
    assert idx == {"a": 0, "b": 1, "n": 4, "c": 5, "d": 6}


def test_blend_adds_both_directions_on_each_measures_scale(spark):
    sims = spark.createDataFrame(
        [(0, "a", 1, "b", "jaccard", 1, 0.4, 3), (1, "b", 0, "a", "jaccard", 1, 0.4, 3),
         (0, "a", 1, "b", "llr", 1, 20.0, 3), (1, "b", 0, "a", "llr", 1, 20.0, 3)],
        "item_idx int, item_id string, neighbour_idx int, neighbour_id string, measure string, "
        "rank int, score double, cooccurrence long",
    )  # fmt: skip
    content = spark.createDataFrame(
        [("n", "a", 0.5, 1)], "item_id string, neighbour_id string, score double, rank int"
    )
    indices = spark.createDataFrame([("a", 0), ("b", 1), ("n", 2)], "item_id string, item_idx int")
    rows = blend_content(sims, content, indices).collect()
    added = {
        (r[C.MEASURE], r[C.ITEM_ID], r[C.NEIGHBOUR_ID]): r for r in rows if r[C.SOURCE] == "content"
    }
    assert set(added) == {
        (m, x, y) for m in ("jaccard", "llr") for x, y in (("n", "a"), ("a", "n"))
    }
    assert added[("jaccard", "n", "a")][C.SCORE] == pytest.approx(0.2)  # 0.5 x median 0.4
    assert added[("llr", "a", "n")][C.SCORE] == pytest.approx(10.0)
    assert added[("llr", "a", "n")][C.RANK] == 2  # after a's behavioural neighbour b
    assert sum(r[C.SOURCE] == "behaviour" for r in rows) == 4


def test_blend_keeps_the_larger_score_per_pair_ties_to_behaviour_and_leaves_others_alone(spark):
    sims = spark.createDataFrame(
        [(0, "a", 1, "b", "jaccard", 1, 0.5, 3), (0, "a", 2, "c", "jaccard", 2, 0.25, 1),
         (1, "b", 0, "a", "jaccard", 1, 0.5, 3), (2, "c", 0, "a", "jaccard", 1, 0.25, 1),
         (9, "z", 7, "x", "jaccard", 1, 0.5, 2), (9, "z", 8, "y", "jaccard", 2, 0.5, 2)],
        "item_idx int, item_id string, neighbour_idx int, neighbour_id string, measure string, "
        "rank int, score double, cooccurrence long",
    )  # fmt: skip
    # The median score is 0.5: a content match of 1.0 scores 0.5 on this measure.
    content = spark.createDataFrame(
        [("a", "c", 1.0, 1), ("b", "a", 1.0, 1)],
        "item_id string, neighbour_id string, score double, rank int",
    )
    indices = spark.createDataFrame(
        [("a", 0), ("b", 1), ("c", 2), ("x", 7), ("y", 8), ("z", 9)], "item_id string, item_idx int"
    )
    expected = spark.createDataFrame(
        [(0, "a", 1, "b", "jaccard", 1, 0.5, 3, "behaviour"),  # a content tie: behaviour kept
         (0, "a", 2, "c", "jaccard", 2, 0.5, 0, "content"),  # beats 0.25; b wins the tie by id
         (1, "b", 0, "a", "jaccard", 1, 0.5, 3, "behaviour"),
         (2, "c", 0, "a", "jaccard", 1, 0.5, 0, "content"),
         (9, "z", 7, "x", "jaccard", 1, 0.5, 2, "behaviour"),  # no content rows: as they were
         (9, "z", 8, "y", "jaccard", 2, 0.5, 2, "behaviour")],
        "item_idx int, item_id string, neighbour_idx int, neighbour_id string, measure string, "
        "rank int, score double, cooccurrence long, source string",
    )  # fmt: skip
    assert_df_equality(
        blend_content(sims, content, indices), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_a_new_item_reaches_item_based_lists_and_similar_items_from_its_first_day(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    ts = datetime(2026, 4, 1)
    events = [(f"u{u}", i) for u in range(6) for i in ("a", "b", "d")] + [("u9", "a")]
    rows = [
        (f"e{k}", u, i, int(u[1:]), "abdn".index(i), "view", ts, ts.date(), 1.0, 1.0,
         "f", "b", ts)
        for k, (u, i) in enumerate(events)
    ]  # fmt: skip
    from recsys_spark.ingest.schemas import INTERACTIONS

    spark.createDataFrame(rows, INTERACTIONS).write.format("delta").save(
        storage.table(tables.INTERACTIONS)
    )
    items = spark.createDataFrame(CATALOGUE, ITEMS)
    sim = SimilarityConfig(measures=("jaccard",), min_support=1, top_k=5)
    run_similarity(spark, sim, RecommendConfig(), storage, top_n=3, run_id="t")
    plain = delta.read_table(spark, storage.table(tables.MODEL_RECOMMENDATIONS))
    assert plain.filter(F.col(C.ITEM_ID) == "n").count() == 0  # no behaviour: never listed
    content = ContentSource(items, min_interactions=2)
    run_similarity(spark, sim, RecommendConfig(), storage, top_n=3, run_id="t", content=content)
    lists = delta.read_table(spark, storage.table(tables.MODEL_RECOMMENDATIONS))
    u9 = {r[C.ITEM_ID]: r for r in lists.filter(F.col(C.USER_ID) == "u9").collect()}
    assert "n" in u9 and u9["n"][C.SOURCE] == "model"  # u9 saw a, n's content neighbour
    similar = delta.read_table(spark, storage.table(tables.SIMILAR_ITEMS))
    of_n = similar.filter(F.col(C.ITEM_ID) == "n").collect()
    assert {r[C.SIMILAR_ITEM_ID] for r in of_n} >= {"a", "d"}
    assert {r[C.SOURCE] for r in of_n} == {"content"}


def test_cold_item_recall_and_exposure(spark):
    train = spark.createDataFrame(
        [("u1", "a"), ("u2", "a"), ("u1", "b"), ("u2", "b")], "user_id string, item_id string"
    )
    test = spark.createDataFrame(
        [("u1", "n"), ("u2", "n"), ("u2", "a"), ("u3", "m")], "user_id string, item_id string"
    )
    cold = new_items(train, test, 2)
    assert sorted(r[0] for r in cold.collect()) == ["m", "n"]
    lists = spark.createDataFrame(
        [("u1", "n", 1), ("u1", "c", 2), ("u2", "a", 1), ("u2", "c", 2)],
        "user_id string, item_id string, rank int",
    )
    got = cold_item_metrics(lists, test, cold, k=2)
    # u3 has no list: its pair is not counted. u1's n is a hit, u2's is not.
    assert got["cold_recall_at_2"] == 0.5 and got["cold_test_pairs"] == 2
    assert got["cold_exposure_at_2"] == 0.25
    empty = cold_item_metrics(lists.limit(0), test, cold, k=2)
    assert math.isnan(empty["cold_recall_at_2"]) and empty["cold_exposure_at_2"] == 0.0
