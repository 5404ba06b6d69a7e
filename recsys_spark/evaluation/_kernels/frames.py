"""The Spark side of the evaluation: one shuffle of users, numpy on the executors, one collect.

1. `tagged_rows` puts the lists, held-out pairs and training pairs in one frame.
   `run_passes` splits it again: the lists and held-out pairs are shuffled by user and
   each partition's users go through `user_pass` together (`mapInArrow`: vectorised
   numpy over a whole partition beats per-user arrays and interpreted lambdas in Spark
   SQL several times over), out come per-user metrics, per-item partial counts and the
   diversity rows packed per item bucket (`stages.user_partition`, `pairs`). The
   training pairs, usually the most rows, are not shuffled: each of their partitions
   packs its distinct pairs into one row (`stages.train_partition`), a piece of the
   binary user x item matrix X (`training_pieces`; cached once when several models
   are evaluated against the same pairs).
2. Those rows are routed with `repartitionById`: bucket b (0..B-1) gets its packed
   diversity rows and a copy of every piece of X and computes exact pair cosines
   (`cosine`); bucket 0 also gets the user and item rows, and sums the metrics per
   history length (read off X) and the catalogue-sized item statistics (`item_stats`)
   (`stages.route_partition`).

Only named sums reach the driver: a few per history length, per bucket and per curve
point, whatever the number of users, interactions or items.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from recsys_spark import columns as C
from recsys_spark.evaluation._kernels import item_stats, pairs
from recsys_spark.evaluation._kernels import user_pass as up
from recsys_spark.evaluation._kernels.steps import (
    BUCKET,
    RESULT_SCHEMA,
    ROW,
    TABLE,
    X_ROWS,
    per_user_partition,
    route_partition,
    train_partition,
    user_partition,
)
from recsys_spark.io.delta import session_conf

# Rows between the stages: which kind, which bucket, and binary cells (see `stages`).
PASS_SCHEMA = T.StructType(
    [
        T.StructField(ROW, T.IntegerType()),
        T.StructField(BUCKET, T.IntegerType()),
        *[T.StructField(n, T.BinaryType()) for n in (TABLE, *pairs.PACK_COLUMNS)],
    ]
)
# Arrow batches of 100K rows instead of Spark's 10K: the numpy pass works on a whole
# partition either way, and fewer batches cut the per-batch cost (about 7% of the whole
# evaluation on bench_evaluate's 2.5M rows).
ARROW_SETTINGS = {"spark.sql.execution.arrow.maxRecordsPerBatch": "100000"}


def tagged_rows(
    recs: DataFrame | None,
    relevant: DataFrame | None,
    train: DataFrame | None,
    served: DataFrame | None = None,
    *,
    relevance_col: str | None = None,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> DataFrame:
    """The inputs as one frame `_tag`, `_user`, `_item`, `_rank` (and `_relevance`).

    Users and items take the types of the first input given (relevant pairs first);
    `served` (the users who should have a list) needs only `user_col`. `_relevance`
    is there only with `relevance_col`: a column less to shuffle for binary relevance.
    """
    given = [f for f in (relevant, recs, train, served) if f is not None]
    user_type = given[0].schema[user_col].dataType
    item_type = next(f.schema[item_col].dataType for f in given if item_col in f.columns)
    parts = []
    for tag, frame in ((up.LIST, recs), (up.RELEVANT, relevant), (up.TRAIN, train)):
        if frame is None:
            continue
        rank = F.col(rank_col) if tag == up.LIST else F.lit(None)
        value = F.col(relevance_col) if tag == up.RELEVANT and relevance_col else F.lit(None)
        parts.append(
            frame.select(
                F.lit(tag).cast("byte").alias(up.TAG),
                F.col(user_col).cast(user_type).alias(up.USER),
                F.col(item_col).cast(item_type).alias(up.ITEM),
                rank.cast("long").alias(up.RANK),
                *([value.cast("double").alias(up.RELEVANCE)] if relevance_col else []),
            )
        )
    if served is not None:
        parts.append(
            served.select(
                F.lit(up.SERVED).cast("byte").alias(up.TAG),
                F.col(user_col).cast(user_type).alias(up.USER),
                F.lit(None).cast(item_type).alias(up.ITEM),
                F.lit(None).cast("long").alias(up.RANK),
                *([F.lit(None).cast("double").alias(up.RELEVANCE)] if relevance_col else []),
            )
        )
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part)
    return rows


@dataclass
class PassResult:
    """What `run_passes` brings back: sums per history length, item sums, curves."""

    by_history: dict[int, dict[str, float]] = field(default_factory=dict)
    item_sums: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    within: float = 0.0
    unexpected: float = 0.0

    def total(self, name: str) -> float:
        """Sum of one per-history column over every history length."""
        return float(sum(row.get(name, 0.0) for row in self.by_history.values()))


def run_passes(
    rows: DataFrame,
    *,
    ks: Sequence[int],
    k: int,
    head_share: float = 0.2,
    n_points: int = 100,
    served_by: str = "relevant",
    graded: bool = False,
    diversity: bool = False,
    num_buckets: int | None = None,
    pieces: DataFrame | None = None,
) -> PassResult:
    """Both stages of the module docstring over `rows` (from `tagged_rows`), one action.

    Parameters
    ----------
    ks, k
        Cut-offs of the ranking metrics; the cut-off of everything else.
    served_by
        Who should have a list (`user_coverage`): `relevant`, `train` or `given`.
    diversity
        Also compute the diversity sums (`within`, `unexpected`).
    num_buckets
        Buckets of the pair cosines; default: `default_buckets`.
    pieces
        X already packed (`training_pieces`), instead of training rows in `rows`.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    if not 0.0 <= head_share <= 1.0:
        raise ValueError(f"head_share must be in [0, 1]; got {head_share}")
    spark = rows.sparkSession
    buckets = int(num_buckets or default_buckets(spark)) if diversity else 0
    names = up.metric_names(ks)
    arrow_schema = to_arrow_schema(PASS_SCHEMA)
    first = partial(
        user_partition,
        schema=arrow_schema,
        ks=tuple(ks),
        k=k,
        served_by=served_by,
        graded=graded,
        buckets=buckets,
    )
    # The tag is a literal per input, so each filter keeps only its inputs' scans.
    is_train = F.col(up.TAG) == up.TRAIN
    # An explicit partition count: AQE does not coalesce it into one task (one core).
    parts = int(spark.conf.get("spark.sql.shuffle.partitions") or 2)
    passed = rows.where(~is_train).repartition(parts, up.USER).mapInArrow(first, PASS_SCHEMA)
    x_rows = training_pieces(rows.where(is_train)) if pieces is None else pieces
    # X goes to every bucket; bucket 0 (the only one without diversity) sums the rest too.
    n_parts = max(buckets, 1)
    every = F.sequence(F.lit(0), F.lit(n_parts - 1))
    target = F.when(F.col(ROW) == X_ROWS, every).otherwise(F.array(BUCKET))
    passed = passed.unionByName(x_rows).withColumn(BUCKET, F.explode(target))
    second = partial(
        route_partition,
        names=names,
        served_by=served_by,
        head_share=head_share,
        n_points=n_points,
    )
    # Partition b is bucket b: one task each.
    routed = passed.repartitionById(n_parts, BUCKET).mapInArrow(second, RESULT_SCHEMA)
    with session_conf(spark, ARROW_SETTINGS):
        return _assemble(routed.collect())


def training_pieces(
    train: DataFrame, *, user_col: str = up.USER, item_col: str = up.ITEM
) -> DataFrame:
    """Pieces of X: each partition of training pairs packed where it lies into one row.

    `run_passes` builds them from its training rows; cached, they serve every
    evaluation against the same training pairs (`evaluate.prepare_training`).
    """
    pairs_only = train.select(F.col(user_col).alias(up.USER), F.col(item_col).alias(up.ITEM))
    schema = to_arrow_schema(PASS_SCHEMA)
    return pairs_only.mapInArrow(partial(train_partition, schema=schema), PASS_SCHEMA)


def default_buckets(spark: SparkSession) -> int:
    """One bucket per core: each bucket copies X, so more buckets only add copies.

    Cores: N of a `local[N]` master (all CPUs for `local[*]`), else the default
    parallelism (the cluster's total cores unless set otherwise).
    """
    sc = spark.sparkContext
    found = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", sc.master or "")
    if found:
        cores = found.group(1)
        if cores is None:
            return 1
        return (os.cpu_count() or 1) if cores == "*" else int(cores)
    return max(1, sc.defaultParallelism)


def per_user_pass(rows: DataFrame, *, ks: Sequence[int], graded: bool = False) -> DataFrame:
    """One row per evaluated user: `_user`, `n_relevant`, `n_recommended`, the metrics."""
    names = up.metric_names(ks)
    schema = T.StructType(
        [
            T.StructField(up.USER, rows.schema[up.USER].dataType),
            T.StructField("n_relevant", T.LongType()),
            T.StructField("n_recommended", T.LongType()),
            *[T.StructField(n, T.DoubleType()) for n in names],
        ]
    )
    run = partial(per_user_partition, schema=to_arrow_schema(schema), ks=tuple(ks), graded=graded)
    parts = int(rows.sparkSession.conf.get("spark.sql.shuffle.partitions") or 2)
    return rows.repartition(parts, up.USER).mapInArrow(run, schema)


def _assemble(rows: list) -> PassResult:
    """The collected (part, key, name, value) rows as a `PassResult`."""
    result = PassResult(
        item_sums={
            **item_stats.coverage_sums(np.zeros(0), np.zeros(0), np.zeros(0, bool)),
            **item_stats.item_bucket_sums(
                np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0, bool)
            ),
        },
        curves={n: [0.0] for n in ("longtail_x", "longtail_recs", "longtail_train")},
    )
    result.curves.update({"lorenz_x": [0.0], "lorenz_y": [0.0]})
    points: dict[str, dict[int, float]] = {}
    for part, key, name, value in rows:
        if part == "stats":
            result.by_history.setdefault(int(key), {})[name] = float(value)
        elif part == "items":
            result.item_sums[name] = float(value)
        elif part == "curve":
            points.setdefault(name, {})[int(key)] = float(value)
        elif name == "within":
            result.within += float(value)
        else:
            result.unexpected += float(value)
    for name, by_index in points.items():
        result.curves[name] = [by_index[i] for i in sorted(by_index)]
    return result
