"""Content neighbours: new items get item-item similarities from their metadata.

An item with fewer than `catalog.cold_min_interactions` interactions has (almost) no
co-occurrences, so no behavioural neighbours: it could never be recommended by the
item-based models nor shown as a similar item. Its content neighbours come from the
catalogue instead: the mean of the category Jaccard and the TF-IDF cosine of the title
words, over the catalogue items sharing a category or a word (the most used ones per
token), the `top_k` best per new item: two sparse products per partition of new items
against the broadcast catalogue.

`blend_content` adds them to the behavioural `item_similarity` rows of every measure
with `source = content`: the new item's own list (its neighbours, which score it in
"candidate" neighbourhoods) and the reverse rows (the new item in its neighbours' lists,
which score it in "history" neighbourhoods and show it among their similar items).
Content scores are put on each measure's scale: multiplied by the median behavioural
score of that measure, so a perfect content match counts as a typical behavioural
neighbour.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog import schemas as S
from recsys_spark.config import CatalogConfig, StorageConfig
from recsys_spark.io import delta
from recsys_spark.similarity.top_k import top_k_per_group

SOURCE_BEHAVIOUR, SOURCE_CONTENT = "behaviour", "content"
_CAT = "_cat"


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


def load_categories(
    spark: SparkSession, storage: StorageConfig, version: int | None = None
) -> DataFrame | None:
    """The lake's catalogue as `item_id`, `categories` (at `version`, default the newest),
    for the ranker's category feature; None without an `items` table."""
    path = storage.table(tables.ITEMS)
    if not delta.table_exists(spark, path):
        return None
    return delta.read_table(spark, path, version=version).select(C.ITEM_ID, S.CATEGORIES)


def with_content(
    sims: DataFrame, interactions: DataFrame, content: ContentSource, *, top_k: int
) -> DataFrame:
    """`blend_content` of the new items' content neighbours into `sims`."""
    # One pass over the interactions: each item's users, and the indices it already has.
    users = item_users(interactions).cache()
    cold = cold_items(content.items, users, content.min_interactions)
    # Held: the blend reads the neighbours twice (the items they touch, and the rows).
    neighbours = content_neighbours(
        content.items, cold, users, top_k=top_k, per_token=content.per_token
    ).localCheckpoint(eager=True)
    indices = item_indices(users, content.items)
    return blend_content(sims, neighbours, indices, weight=content.weight)


def item_users(interactions: DataFrame) -> DataFrame:
    """`item_id`, `item_idx`, `_users`: distinct users per item of `interactions`."""
    return interactions.groupBy(C.ITEM_ID, C.ITEM_IDX).agg(
        F.countDistinct(C.USER_ID).alias("_users")
    )


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
    every new item with all of them. Ties go to the more popular neighbour, then to the
    smaller item id.

    The catalogue's word weights and categories are catalogue-sized: they come to the
    driver once and are broadcast, and each partition of cold items scores its
    candidates with two sparse products in scipy (a join per token in Spark SQL cost
    several times more).

    Returns `item_id` (the cold item), `neighbour_id`, `score` in (0, 1] (mean of the
    category Jaccard and the title TF-IDF cosine), `rank` (1 = best).
    """
    # One read of the catalogue gives its ids, title words and (item, category) rows.
    listed = items.select(C.ITEM_ID, S.TITLE, F.col(S.CATEGORIES).alias(_CAT)).toPandas()
    ids = np.unique(listed[C.ITEM_ID].to_numpy(dtype=str))
    words = _title_weights(listed, len(ids))
    cats = listed.explode(_CAT).dropna(subset=[_CAT])
    used = users.toPandas().set_index(C.ITEM_ID)["_users"].reindex(ids).fillna(0).to_numpy()
    shared = items.sparkSession.sparkContext.broadcast(
        _token_matrices(ids, words, cats, used, per_token)
    )
    return cold.select(C.ITEM_ID).mapInPandas(
        partial(_score_cold, shared=shared, top_k=top_k),
        f"{C.ITEM_ID} string, {C.NEIGHBOUR_ID} string, {C.SCORE} double, {C.RANK} int",
    )


def _token_matrices(
    ids: np.ndarray, words: pd.DataFrame, cats: pd.DataFrame, used: np.ndarray, per_token: int
) -> tuple[Any, ...]:
    """Item x token matrices of the title weights and of the categories (every item's
    rows, and the token x item transpose of the candidates'), each item's category
    count, and each item's place in the tie-break (most used first, then id order:
    `ids` is sorted)."""
    pos = pd.Index(ids)
    tie = np.empty(len(ids), dtype=np.int64)
    tie[np.lexsort((np.arange(len(ids)), -used))] = np.arange(len(ids))

    def matrices(rows: pd.DataFrame, token: str, weight: np.ndarray) -> tuple[Any, Any]:
        item = pos.get_indexer(rows[C.ITEM_ID].to_numpy(dtype=str))
        codes = pd.factorize(rows[token])[0]
        shape = (len(ids), int(codes.max(initial=-1)) + 1)
        full = sp.csr_matrix((weight, (item, codes)), shape=shape)
        # each row's place among its token's rows, most used items first
        ranked = np.lexsort((tie[item], codes))
        new_token = np.r_[True, np.diff(codes[ranked]) != 0] if len(item) else np.zeros(0, bool)
        starts = np.flatnonzero(new_token)
        place = np.empty(len(item), dtype=np.int64)
        place[ranked] = np.arange(len(item)) - np.repeat(starts, np.diff(np.r_[starts, len(item)]))
        keep = place < per_token
        candidates = sp.csr_matrix((weight[keep], (item[keep], codes[keep])), shape=shape)
        return full, candidates.T.tocsr()

    w_full, w_cand = matrices(words, "_word", words["_w"].to_numpy(dtype=np.float64))
    k_full, k_cand = matrices(cats, _CAT, np.ones(len(cats)))
    n_cats = np.asarray(k_full.sum(axis=1)).ravel()
    return ids, w_full, w_cand, k_full, k_cand, n_cats, tie


def _score_cold(
    batches: Iterator[pd.DataFrame], *, shared: Any, top_k: int
) -> Iterator[pd.DataFrame]:
    """The content neighbours of one partition's cold items (see `content_neighbours`)."""
    ids, w_full, w_cand, k_full, k_cand, n_cats, tie = shared.value
    position = pd.Index(ids)
    for batch in batches:
        rows = position.get_indexer(batch[C.ITEM_ID].to_numpy(dtype=str))
        rows = np.unique(rows[rows >= 0])
        if not len(rows):
            continue
        cosine = (w_full[rows] @ w_cand).tocsr()  # unit-length rows: dot = cosine
        both = (k_full[rows] @ k_cand).tocoo()  # categories shared
        union = n_cats[rows][both.row] + n_cats[both.col] - both.data
        jaccard = sp.csr_matrix((both.data / union, (both.row, both.col)), shape=cosine.shape)
        score = ((jaccard + cosine) / 2.0).tocoo()
        keep = (score.data > 0) & (rows[score.row] != score.col)
        r = score.row[keep].astype(np.int64)
        j = score.col[keep].astype(np.int64)
        # Rounded so that scores equal on paper tie exactly whatever the float noise of
        # their sums, and the tie-break (popularity, then id) decides.
        s = np.round(score.data[keep], 12)
        top, rank = top_k_per_group(r, s, tie[j], top_k)
        yield pd.DataFrame(
            {
                C.ITEM_ID: ids[rows[r[top]]],
                C.NEIGHBOUR_ID: ids[j[top]],
                C.SCORE: s[top],
                C.RANK: rank.astype(np.int32),
            }
        )


def _title_weights(listed: pd.DataFrame, n_items: int) -> pd.DataFrame:
    """`item_id`, `_word`, `_w`: each title word's TF-IDF weight, unit length per item.

    Words are runs of letters and digits (Unicode), lower-cased, at least two long;
    `n_items` is the catalogue's size (the IDF's numerator)."""
    titles = listed[[C.ITEM_ID, S.TITLE]].drop_duplicates(C.ITEM_ID)
    tokens = (
        titles[S.TITLE]
        .fillna("")
        .str.lower()
        .str.split(r"[\W_]+", regex=True)
        .explode()
        .rename("_word")
    )
    tokens = pd.DataFrame({C.ITEM_ID: titles[C.ITEM_ID].reindex(tokens.index), "_word": tokens})
    tokens = tokens[tokens["_word"].str.len() >= 2]
    tf = tokens.groupby([C.ITEM_ID, "_word"], sort=True).size().rename("_tf").reset_index()
    df = tf.groupby("_word").size().rename("_df")
    tf["_w"] = tf["_tf"] * np.log(float(n_items) / tf["_word"].map(df).to_numpy())
    tf = tf[tf["_w"] > 0]
    norm = np.sqrt((tf["_w"] ** 2).groupby(tf[C.ITEM_ID]).transform("sum"))
    return pd.DataFrame(
        {C.ITEM_ID: tf[C.ITEM_ID].to_numpy(), "_word": tf["_word"].to_numpy(),
         "_w": (tf["_w"] / norm).to_numpy()}
    )  # fmt: skip


def item_indices(known: DataFrame, items: DataFrame) -> DataFrame:
    """`item_id`, `item_idx` of every item of `known` (rows with both, such as the
    interactions or `item_users` output) and of the catalogue: items without
    interactions get the next free numbers (in id order) for this run's scoring only."""
    known = known.select(C.ITEM_ID, C.ITEM_IDX).distinct()
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
    `measure`, `rank`, `score`, `cooccurrence`), ranked per item and measure by score,
    ties to the smaller neighbour id; `content`: `content_neighbours` output; `indices`:
    `item_indices` output. Returns the same columns plus `source` (`behaviour` or
    `content`). A pair that has both keeps the larger score (and its source, `behaviour`
    on a tie). Only the items that gain content rows (the new items and their
    neighbours, about a quarter of the catalogue) are ranked again, one partition of
    items at a time in pandas; every other item's rows pass through with their ranks.
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
    columns = added.columns
    touched = F.broadcast(added.select(C.ITEM_IDX).distinct())
    kept = behaviour.join(touched, C.ITEM_IDX, "left_anti").select(*columns)
    redo = (
        behaviour.join(touched, C.ITEM_IDX, "left_semi")
        .select(*columns)
        .unionByName(added)
        .repartition(C.ITEM_IDX)
    )
    schema = added.schema
    return kept.unionByName(redo.mapInPandas(_ranked_again, schema))


def _ranked_again(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Behavioural and content rows of whole items: one row per pair (the larger score,
    `behaviour` first on a tie), ranked per item and measure by score, then neighbour id.

    Sorted with `np.lexsort` on numeric keys (the measure and the neighbour id as their
    sorted codes): pandas' multi-column sort on the string columns cost most of the
    blend's time."""
    part = pd.concat(list(frames), ignore_index=True)
    if part.empty:
        return
    measure = pd.factorize(part[C.MEASURE], sort=True)[0]
    item = part[C.ITEM_IDX].to_numpy()
    neighbour = part[C.NEIGHBOUR_IDX].to_numpy()
    score = part[C.SCORE].to_numpy()
    content = (part[C.SOURCE] == SOURCE_CONTENT).to_numpy()
    # One row per (measure, item, neighbour): the larger score, then behaviour.
    order = np.lexsort((content, -score, neighbour, item, measure))
    m, i, n = measure[order], item[order], neighbour[order]
    first = np.r_[True, (m[1:] != m[:-1]) | (i[1:] != i[:-1]) | (n[1:] != n[:-1])]
    keep = order[first]
    # Ranked per (measure, item) by score, ties to the smaller neighbour id.
    name = pd.factorize(part[C.NEIGHBOUR_ID].to_numpy()[keep], sort=True)[0]
    ranked = keep[np.lexsort((name, -score[keep], item[keep], measure[keep]))]
    m, i = measure[ranked], item[ranked]
    starts = np.flatnonzero(np.r_[True, (m[1:] != m[:-1]) | (i[1:] != i[:-1])])
    sizes = np.diff(np.r_[starts, len(ranked)])
    out = part.iloc[ranked].reset_index(drop=True)
    out[C.RANK] = (np.arange(len(ranked)) - np.repeat(starts, sizes) + 1).astype(np.int32)
    yield out
