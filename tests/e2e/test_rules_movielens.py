"""The business rules on real data: MovieLens-100K with 10% of the movies inactive and a
few hundred exclusions. No list of any model (ALS, item-based, EASE, the hybrid) or of
the popularity fallback holds an inactive or excluded item, every list is still
`top_n` long, and every reason is an item of that user's history."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.ingest import ingest_catalog
from recsys_spark.catalog.rules import load_rules
from recsys_spark.config import load_config
from recsys_spark.ingest.runner import run_ingest
from recsys_spark.io import delta
from recsys_spark.models.affinity import user_item_affinity
from recsys_spark.models.fallback import recommend_under_rules
from recsys_spark.models.hybrid import blend_ranked_lists
from recsys_spark.models.popularity import popular_items
from recsys_spark.pipeline.fits import fit_als_lists, fit_ease_lists, fit_item_lists

pytestmark = pytest.mark.e2e
RUN = date(1998, 4, 30)
N = 10


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_no_list_holds_an_inactive_or_excluded_movie_and_every_list_is_full(
    spark, tmp_path, ml100k_dir
):
    rng = np.random.default_rng(7)
    inactive = [str(i) for i in rng.choice(np.arange(1, 1683), 168, replace=False)]
    catalogue = _write(
        tmp_path / "inactive.csv", "item_id,active", [f"{i},false" for i in inactive]
    )
    cfg = load_config(
        "conf/movielens.yml",
        [
            f"storage.root={tmp_path / 'lake'}",
            f"ingest.source={ml100k_dir / 'ml-100k.inter'}",
            f"catalog.items.source={ml100k_dir / 'ml-100k.item'}",
            "tracking.enabled=false",
            "als.max_iter=5",
        ],
    )
    storage = cfg.storage
    run_ingest(spark, cfg.ingest, storage)
    ingest_catalog(spark, cfg.catalog, storage)
    # A partial snapshot with two columns: only `active` changes, the titles stay.
    partial = load_config(
        None,
        [f"catalog.items.source={catalogue}"]
        + [
            f"catalog.items.columns.{k}="
            for k in ("title", "categories", "available_from", "available_until")
        ],  # fmt: skip
    ).catalog
    ingest_catalog(spark, partial, storage, kinds=("items",))
    items = delta.read_table(spark, storage.table(tables.ITEMS))
    assert items.filter(~F.col("active")).count() == 168
    assert items.filter(F.col("title").isNull()).count() == 0
    events = delta.read_table(spark, storage.table(tables.INTERACTIONS))
    affinity = user_item_affinity(events)
    popular = popular_items(affinity, window_days=None)
    # Exclusions where they bite: 300 users, each excluded from a popular movie unseen.
    top = [r[C.ITEM_ID] for r in popular.orderBy(C.RANK).limit(300).collect()]
    seen = {(r[0], r[1]) for r in affinity.select(C.USER_ID, C.ITEM_ID).collect()}
    users = sorted({u for u, _ in seen}, key=int)
    pairs = []
    for u in rng.choice(users, 300, replace=False):
        unseen = [i for i in top if (u, i) not in seen and i not in inactive]
        pairs.append(f"{u},{unseen[0]},")  # the most popular movie the user has not seen
    exclusions = _write(tmp_path / "not_interested.csv", "user_id,item_id,until", pairs)
    excl_cfg = load_config(None, [f"catalog.exclusions.source={exclusions}"]).catalog
    ingest_catalog(spark, excl_cfg, storage, kinds=("exclusions",))
    rules = load_rules(spark, cfg.rules, storage, RUN)
    assert rules.active

    deep = rules.depth(N)
    fit_item_lists(spark, cfg, storage, deep, measures=("jaccard",), run_id="t")
    fit_als_lists(spark, cfg, storage, cfg.als, deep)
    fit_ease_lists(spark, cfg, storage, deep, run_id="t")
    rows = delta.read_table(spark, storage.table(tables.MODEL_RECOMMENDATIONS)).cache()
    lists = {m: rows.filter(F.col(C.MODEL) == m) for m in ("als", "item_jaccard", "ease")}
    lists["hybrid"] = blend_ranked_lists(
        lists["als"], lists["item_jaccard"], weight=0.5, depth=deep, n=deep
    )
    cold = spark.createDataFrame([(f"new{i}",) for i in range(5)], "user_id string")
    served_users = events.select(C.USER_ID).unionByName(cold)
    blocked = spark.createDataFrame([(i,) for i in inactive], "item_id string")
    excluded = spark.createDataFrame(
        [p.split(",")[:2] for p in pairs], "user_id string, item_id string"
    )
    history = affinity.select(C.USER_ID, F.col(C.ITEM_ID).alias(C.BECAUSE_ITEM_ID))
    n_users = served_users.distinct().count()
    for model, model_lists in lists.items():
        served = recommend_under_rules(
            model_lists, served_users, affinity, popular, rules, n=N
        ).cache()
        assert served.join(blocked, C.ITEM_ID, "left_semi").count() == 0, model
        assert served.join(excluded, [C.USER_ID, C.ITEM_ID], "left_semi").count() == 0, model
        sizes = served.groupBy(C.USER_ID).count()
        assert sizes.count() == n_users and sizes.filter(F.col("count") != N).count() == 0, model
        cold_rows = served.join(cold, C.USER_ID, "left_semi")
        assert cold_rows.filter(F.col(C.SOURCE) != "popularity").count() == 0
        assert cold_rows.count() == 5 * N
        reasons = served.filter(F.col(C.BECAUSE_ITEM_ID).isNotNull())
        assert reasons.count() > 0.5 * n_users * N, model
        assert reasons.join(history, [C.USER_ID, C.BECAUSE_ITEM_ID], "left_anti").count() == 0
        served.unpersist()
