"""Content neighbours: new items get item-item similarities from their metadata.

An item with fewer than `catalog.cold_min_interactions` interactions has (almost) no
co-occurrences, so no behavioural neighbours: it could never be recommended by the
item-based models nor shown as a similar item. Its content neighbours come from the
catalogue instead: the mean of the category Jaccard and the TF-IDF cosine of the title
words, over every other catalogue item sharing a category or a word (one join on an
inverted index, in Spark), the `top_k` best per new item.

`blend_content` adds them to the behavioural `item_similarity` rows of every measure
with `source = content`: the new item's own list (its neighbours, which score it in
"candidate" neighbourhoods) and the reverse rows (the new item in its neighbours' lists,
which score it in "history" neighbourhoods and show it among their similar items).
Content scores are put on each measure's scale: multiplied by the median behavioural
score of that measure, so a perfect content match counts as a typical behavioural
neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog import schemas as S
from recsys_spark.config import CatalogConfig, StorageConfig
from recsys_spark.io import delta

SOURCE_BEHAVIOUR, SOURCE_CONTENT = "behaviour", "content"
_C, _J = "_cold", "_other"


@dataclass(frozen=True)
class ContentSource:
    """The catalogue the content neighbours come from, and who counts as new."""

    items: DataFrame  # `item_id`, `title`, `categories`
    min_interactions: int
    weight: float = 1.0
    per_token: int = 200  # candidate neighbours per category or title word: the most popular


def load_content(
    spark: SparkSession, cfg: CatalogConfig, storage: StorageConfig, version: int | None = None
) -> ContentSource | None:
    """The content source of the lake's `items` table (at `version`, default the newest);
    None without a table or with `catalog.content_neighbours` off."""
    path = storage.table(tables.ITEMS)
    if not cfg.content_neighbours or not delta.table_exists(spark, path):
        return None
    items = delta.read_table(spark, path, version=version).select(C.ITEM_ID, S.TITLE, S.CATEGORIES)
    return ContentSource(
        items, cfg.cold_min_interactions, cfg.content_weight, cfg.content_candidates
    )


def with_content(
    sims: DataFrame, interactions: DataFrame, content: ContentSource, *, top_k: int
) -> DataFrame:
    """`blend_content` of the new items' content neighbours into `sims`."""
    users = item_users(interactions).cache()
    cold = cold_items(content.items, users, content.min_interactions)
    neighbours = content_neighbours(
        content.items, cold, users, top_k=top_k, per_token=content.per_token
    )
    indices = item_indices(interactions, content.items)
    return blend_content(sims, neighbours, indices, weight=content.weight)


def item_users(interactions: DataFrame) -> DataFrame:
    """`item_id`, `_users`: distinct users per item of `interactions`."""
    return interactions.groupBy(C.ITEM_ID).agg(F.countDistinct(C.USER_ID).alias("_users"))


def cold_items(items: DataFrame, users: DataFrame, min_interactions: int) -> DataFrame:
    """`item_id` of the catalogue items with fewer than `min_interactions` distinct users
    (`users`: `item_users` output)."""
    counted = items.select(C.ITEM_ID).distinct().join(users, C.ITEM_ID, "left")
    return counted.filter(F.coalesce(F.col("_users"), F.lit(0)) < min_interactions).select(
        C.ITEM_ID
    )


def content_neighbours(
    items: DataFrame, cold: DataFrame, users: DataFrame, *, top_k: int, per_token: int = 200
) -> DataFrame:
    """The `top_k` content neighbours of each `cold` item among the catalogue `items`.

    Candidates are, per category and per title word, the `per_token` items with the most
    users (`users`: `item_users` output): the neighbours that can score a new item are
    those in users' histories, and a category of thousands of items would otherwise pair
    every new item with all of them. Ties go to the more popular neighbour.

    Returns `item_id` (the cold item), `neighbour_id`, `score` in (0, 1] (mean of the
    category Jaccard and the title TF-IDF cosine), `rank` (1 = best).
    """
    words = _title_weights(items)
    cats = items.select(C.ITEM_ID, F.explode_outer(S.CATEGORIES).alias("_cat")).filter(
        F.col("_cat").isNotNull()
    )
    n_cats = cats.groupBy(C.ITEM_ID).agg(F.count(F.lit(1)).alias("_n"))
    others = _most_popular(words, "_word", users, per_token).select(
        F.col(C.ITEM_ID).alias(_J), "_word", F.col("_w").alias("_wj")
    )
    cold_words = words.join(cold, C.ITEM_ID, "left_semi").withColumnRenamed(C.ITEM_ID, _C)
    title = (
        cold_words.join(others, "_word")
        .filter(F.col(_C) != F.col(_J))
        .groupBy(_C, _J)
        .agg(F.sum(F.col("_w") * F.col("_wj")).alias("_cos"))  # weights are unit-normalised
    )
    jaccard = F.col("_shared") / (F.col("_nc") + F.col("_nj") - F.col("_shared"))
    popular_cats = _most_popular(cats, "_cat", users, per_token).withColumnRenamed(C.ITEM_ID, _J)
    cold_cats = cats.join(cold, C.ITEM_ID, "left_semi").withColumnRenamed(C.ITEM_ID, _C)
    shared = (
        cold_cats.join(popular_cats, "_cat")
        .filter(F.col(_C) != F.col(_J))
        .groupBy(_C, _J)
        .agg(F.count(F.lit(1)).alias("_shared"))
        .join(n_cats.select(F.col(C.ITEM_ID).alias(_C), F.col("_n").alias("_nc")), _C)
        .join(n_cats.select(F.col(C.ITEM_ID).alias(_J), F.col("_n").alias("_nj")), _J)
        .select(_C, _J, jaccard.alias("_jac"))
    )
    pairs = title.join(shared, [_C, _J], "full_outer").join(
        users.select(F.col(C.ITEM_ID).alias(_J), "_users"), _J, "left"
    )
    score = (F.coalesce(F.col("_jac"), F.lit(0.0)) + F.coalesce(F.col("_cos"), F.lit(0.0))) / 2.0
    popularity = F.coalesce(F.col("_users"), F.lit(0)).desc()
    order = Window.partitionBy(_C).orderBy(F.col(C.SCORE).desc(), popularity, F.col(_J))
    return (
        pairs.select(_C, _J, "_users", score.alias(C.SCORE))
        .filter(F.col(C.SCORE) > 0)
        .withColumn(C.RANK, F.row_number().over(order))
        .filter(F.col(C.RANK) <= top_k)
        .select(F.col(_C).alias(C.ITEM_ID), F.col(_J).alias(C.NEIGHBOUR_ID), C.SCORE, C.RANK)
    )


def _most_popular(rows: DataFrame, token: str, users: DataFrame, n: int) -> DataFrame:
    """The rows of the `n` items with the most users per `token` (ties by item id)."""
    order = Window.partitionBy(token).orderBy(
        F.coalesce(F.col("_users"), F.lit(0)).desc(), F.col(C.ITEM_ID)
    )
    ranked = rows.join(users, C.ITEM_ID, "left").withColumn("_pos", F.row_number().over(order))
    return ranked.filter(F.col("_pos") <= n).drop("_pos", "_users")


def _title_weights(items: DataFrame) -> DataFrame:
    """`item_id`, `_word`, `_w`: each title word's TF-IDF weight, unit length per item."""
    tokens = items.select(
        C.ITEM_ID,
        F.explode(
            F.split(F.lower(F.coalesce(F.col(S.TITLE), F.lit(""))), "[^\\p{L}\\p{N}]+")
        ).alias("_word"),
    ).filter(F.length("_word") >= 2)
    tf = tokens.groupBy(C.ITEM_ID, "_word").agg(F.count(F.lit(1)).cast("double").alias("_tf"))
    n_items = items.select(C.ITEM_ID).distinct().count()
    df = tf.groupBy("_word").agg(F.count(F.lit(1)).alias("_df"))
    raw = (
        tf.join(df, "_word")
        .select(
            C.ITEM_ID,
            "_word",
            (F.col("_tf") * F.log(F.lit(float(n_items)) / F.col("_df"))).alias("_w"),
        )
        .filter(F.col("_w") > 0)
    )
    norm = raw.groupBy(C.ITEM_ID).agg(F.sqrt(F.sum(F.col("_w") * F.col("_w"))).alias("_norm"))
    return raw.join(norm, C.ITEM_ID).select(
        C.ITEM_ID, "_word", (F.col("_w") / F.col("_norm")).alias("_w")
    )


def item_indices(interactions: DataFrame, items: DataFrame) -> DataFrame:
    """`item_id`, `item_idx` of every item of `interactions` and of the catalogue: items
    without interactions get the next free numbers (in id order) for this run's
    scoring only."""
    known = interactions.select(C.ITEM_ID, C.ITEM_IDX).distinct()
    start = known.agg(F.coalesce(F.max(C.ITEM_IDX), F.lit(-1)).alias("_start"))
    new = items.select(C.ITEM_ID).distinct().join(known, C.ITEM_ID, "left_anti")
    order = Window.partitionBy(F.lit(0)).orderBy(C.ITEM_ID)
    numbered = new.crossJoin(start).select(
        C.ITEM_ID, (F.col("_start") + F.row_number().over(order)).cast("int").alias(C.ITEM_IDX)
    )
    return known.unionByName(numbered)


def blend_content(
    sims: DataFrame, content: DataFrame, indices: DataFrame, *, weight: float = 1.0
) -> DataFrame:
    """`item_similarity` rows of every measure with the content neighbours added.

    `sims`: the behavioural rows (`item_idx`, `item_id`, `neighbour_idx`, `neighbour_id`,
    `measure`, `rank`, `score`, `cooccurrence`); `content`: `content_neighbours` output;
    `indices`: `item_indices` output. Returns the same columns plus `source`
    (`behaviour` or `content`); per item and measure, rows are ranked again by score.
    A pair that has both keeps the larger score (and its source).
    """
    behaviour = sims.withColumn(C.SOURCE, F.lit(SOURCE_BEHAVIOUR))
    scale = sims.groupBy(C.MEASURE).agg(F.percentile_approx(C.SCORE, 0.5).alias("_scale"))
    both = content.select(C.ITEM_ID, C.NEIGHBOUR_ID, C.SCORE).unionByName(
        content.select(
            F.col(C.NEIGHBOUR_ID).alias(C.ITEM_ID), F.col(C.ITEM_ID).alias(C.NEIGHBOUR_ID), C.SCORE
        )
    )
    idx = indices.select(C.ITEM_ID, C.ITEM_IDX)
    nbr = indices.select(
        F.col(C.ITEM_ID).alias(C.NEIGHBOUR_ID), F.col(C.ITEM_IDX).alias(C.NEIGHBOUR_IDX)
    )
    added = (
        both.groupBy(C.ITEM_ID, C.NEIGHBOUR_ID)
        .agg(F.max(C.SCORE).alias("_content"))
        .join(idx, C.ITEM_ID)
        .join(nbr, C.NEIGHBOUR_ID)
        .crossJoin(F.broadcast(scale))
        .select(
            C.ITEM_IDX,
            C.ITEM_ID,
            C.NEIGHBOUR_IDX,
            C.NEIGHBOUR_ID,
            C.MEASURE,
            F.lit(0).alias(C.RANK),
            (F.col("_content") * F.col("_scale") * F.lit(weight)).alias(C.SCORE),
            F.lit(0).cast("long").alias(C.COOCCURRENCE),
            F.lit(SOURCE_CONTENT).alias(C.SOURCE),
        )
    )
    rows = behaviour.select(*added.columns).unionByName(added)
    best = Window.partitionBy(C.MEASURE, C.ITEM_IDX, C.NEIGHBOUR_IDX).orderBy(
        F.col(C.SCORE).desc(), F.col(C.SOURCE)
    )
    order = Window.partitionBy(C.MEASURE, C.ITEM_IDX).orderBy(
        F.col(C.SCORE).desc(), F.col(C.NEIGHBOUR_ID)
    )
    return (
        rows.withColumn("_best", F.row_number().over(best))
        .filter(F.col("_best") == 1)
        .drop("_best")
        .withColumn(C.RANK, F.row_number().over(order))
    )
