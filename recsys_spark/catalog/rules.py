"""Business rules on recommendation lists: availability, exclusions, category caps.

`load_rules` reads the catalogue (`items`) and the `exclusions` as of a run date; the
`Rules` it returns judge any lists frame (`user_id`, `item_id`, `rank`, ...): each
candidate is kept or removed by the first rule that applies, in this order:

- `availability`: the item is not available when the lists are served (the start of the
  day after the run date): its `active` flag is false, its `available_from` is later or
  its `available_until` has passed; an item the catalogue does not list follows
  `rules.unknown_items`;
- `exclusions`: the (user, item) pair is excluded on the run date (`until` null or on
  or after it);
- `category_cap`: the list already holds `max_per_category` items of one of the item's
  categories (candidates are taken in rank order, so the cap keeps the best ones).

Kept candidates are ranked 1..n again. Models draw `Rules.depth(n)` candidates while a
rule can remove some, so lists stay n long whenever enough eligible items exist. With
every rule off (or nothing to apply them to) the rules change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog import schemas as S
from recsys_spark.config import RulesConfig, StorageConfig
from recsys_spark.io import delta
from recsys_spark.logs import get_logger

log = get_logger(__name__)

AVAILABILITY, EXCLUSIONS, CATEGORY_CAP = "availability", "exclusions", "category_cap"
RULE_NAMES = (AVAILABILITY, EXCLUSIONS, CATEGORY_CAP)
_OF = "_of"  # the name of the judged frame a removed candidate came from
RULE = "_rule"  # the rule that removed a candidate (null: kept); "unused" past the list's end
UNUSED = "unused"
_NEW_RANK = "_new_rank"
_AVAILABLE = "_available"


@dataclass(frozen=True)
class Rules:
    """The rules of one run date; `items` and `excluded` are None when not in force.

    `items`: `item_id`, `_available`, `categories` (the catalogue as of the run date);
    `excluded`: `user_id`, `item_id` pairs in force. `lineage` records the settings and
    the table versions read, for the run's lineage.
    """

    config: RulesConfig = field(default_factory=RulesConfig)
    items: DataFrame | None = None
    excluded: DataFrame | None = None
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def filters(self) -> bool:
        """Can availability or exclusions remove a candidate?"""
        return self.excluded is not None or (self.items is not None and self.config.availability)

    @property
    def caps(self) -> bool:
        return self.items is not None and self.config.max_per_category > 0

    @property
    def active(self) -> bool:
        return self.filters or self.caps

    def depth(self, n: int) -> int:
        """How many candidates a model draws for lists of `n` while rules can remove some."""
        return n * self.config.candidate_factor if self.active else n


NO_RULES = Rules()


def load_rules(
    spark: SparkSession, cfg: RulesConfig, storage: StorageConfig, run_date: date
) -> Rules:
    """The rules of `run_date` over the lake's `items` and `exclusions` tables.

    A rule whose table does not exist is not in force (logged); so is availability
    when `rules.availability` is false, and so on.
    """
    items_path, excl_path = storage.table(tables.ITEMS), storage.table(tables.EXCLUSIONS)
    items_version = delta.table_version(spark, items_path)
    excl_version = delta.table_version(spark, excl_path)
    needs_items = cfg.availability or cfg.max_per_category > 0
    # Both frames are held once: every model's lists are judged against them in several
    # stages of a night, and each judging re-read the tables (the exclusions' distinct).
    items = None
    if needs_items and items_version is None:
        log.info("rules: no items table at %s: availability and category caps are off", items_path)
    elif needs_items:
        catalogue = delta.read_table(spark, items_path, version=items_version)
        items = item_status(catalogue, run_date).localCheckpoint(eager=True)
    excluded = None
    if cfg.exclusions and excl_version is not None:
        pairs = delta.read_table(spark, excl_path, version=excl_version)
        in_force = F.col(S.UNTIL).isNull() | (F.col(S.UNTIL) >= F.lit(run_date))
        excluded = (
            pairs.filter(in_force)
            .select(C.USER_ID, C.ITEM_ID)
            .distinct()
            .localCheckpoint(eager=True)
        )
    lineage = {
        "availability": cfg.availability and items is not None,
        "unknown_items": cfg.unknown_items,
        "exclusions": excluded is not None,
        "max_per_category": cfg.max_per_category if items is not None else 0,
        "candidate_factor": cfg.candidate_factor,
        "items_version": items_version,
        "exclusions_version": excl_version,
        "as_of": serve_instant(run_date).isoformat(),
    }
    return Rules(cfg, items, excluded, lineage)


def serve_instant(run_date: date) -> datetime:
    """When a night's lists are served: the start of the day after its run date."""
    return datetime.combine(run_date + timedelta(days=1), time())


def item_status(catalogue: DataFrame, run_date: date) -> DataFrame:
    """`item_id`, `_available` (at `serve_instant(run_date)`), `categories`."""
    at = F.lit(serve_instant(run_date)).cast("timestamp")
    available = (
        F.coalesce(F.col(S.ACTIVE), F.lit(True))
        & (F.col(S.AVAILABLE_FROM).isNull() | (F.col(S.AVAILABLE_FROM) <= at))
        & (F.col(S.AVAILABLE_UNTIL).isNull() | (F.col(S.AVAILABLE_UNTIL) > at))
    )
    return catalogue.select(
        C.ITEM_ID,
        available.alias(_AVAILABLE),
        F.coalesce(F.col(S.CATEGORIES), F.array().cast("array<string>")).alias(S.CATEGORIES),
    )


def _marked(lists: DataFrame, rules: Rules) -> DataFrame:
    """`lists` with `_rule` set for availability and exclusions, and `categories`."""
    cfg, rows = rules.config, lists
    rule = F.lit(None).cast("string")
    if rules.items is not None:
        rows = rows.join(F.broadcast(rules.items), on=C.ITEM_ID, how="left")
        if cfg.availability:
            unknown_ok = F.lit(cfg.unknown_items == "allow")
            available = F.coalesce(F.col(_AVAILABLE), unknown_ok)
            rule = F.when(~available, F.lit(AVAILABILITY))
    else:
        rows = rows.withColumn(S.CATEGORIES, F.lit(None).cast("array<string>"))
    if rules.excluded is not None:
        flagged = rules.excluded.select(C.USER_ID, C.ITEM_ID, F.lit(True).alias("_excluded"))
        rows = rows.join(flagged, on=[C.USER_ID, C.ITEM_ID], how="left")
        rule = F.coalesce(rule, F.when(F.col("_excluded"), F.lit(EXCLUSIONS)))
    helpers = [c for c in (_AVAILABLE, "_excluded") if c in rows.columns]
    return rows.withColumn(RULE, rule).drop(*helpers)


def judge(lists: DataFrame, rules: Rules, n: int) -> DataFrame:
    """Every candidate of `lists` with `_rule` (what removed it; null = kept; `unused` =
    after the list's n-th kept item) and `_new_rank` (1..n for the kept)."""
    marked = _marked(lists, rules)
    if not rules.caps:
        kept = F.col(RULE).isNull()
        order = Window.partitionBy(C.USER_ID, kept).orderBy(C.RANK, C.ITEM_ID)
        new_rank = F.when(kept, F.row_number().over(order))
        out = marked.withColumn(_NEW_RANK, new_rank)
        return out.withColumn(
            RULE, F.when(F.col(_NEW_RANK) > n, F.lit(UNUSED)).otherwise(F.col(RULE))
        ).drop(S.CATEGORIES)
    cap = rules.config.max_per_category
    schema = T.StructType([*marked.schema.fields, T.StructField(_NEW_RANK, T.IntegerType(), True)])
    schema = T.StructType([f for f in schema.fields if f.name != RULE] + [
        T.StructField(RULE, T.StringType(), True)
    ])  # fmt: skip
    names = [f.name for f in schema.fields]

    def capped(frames):
        for pdf in frames:
            yield _cap_users(pdf, cap, n)[names]

    ordered = marked.repartition(C.USER_ID).sortWithinPartitions(C.USER_ID, C.RANK, C.ITEM_ID)
    return ordered.mapInPandas(capped, schema).drop(S.CATEGORIES)


def _cap_users(pdf: pd.DataFrame, cap: int, n: int) -> pd.DataFrame:
    """The category cap over rows sorted by user and rank: greedy, best rank first."""
    rules = pdf[RULE].tolist()
    new_rank: list[int | None] = [None] * len(pdf)
    user, counts, kept = None, {}, 0
    for i, (u, cats) in enumerate(zip(pdf[C.USER_ID], pdf[S.CATEGORIES], strict=True)):
        if u != user:
            user, counts, kept = u, {}, 0
        if rules[i] is not None:
            continue
        if kept >= n:
            rules[i] = UNUSED
            continue
        cats = [] if cats is None else list(cats)
        if any(counts.get(c, 0) >= cap for c in cats):
            rules[i] = CATEGORY_CAP
            continue
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
        kept += 1
        new_rank[i] = kept
    out = pdf.copy()
    out[RULE] = rules
    out[_NEW_RANK] = pd.array(new_rank, dtype="Int32")
    return out


def apply_rules(lists: DataFrame, rules: Rules, n: int) -> DataFrame:
    """The kept candidates of `lists`, at most `n` per user, ranked 1..n; `lists`'s
    columns. Without active rules: `lists` cut to rank n, as it is."""
    if not rules.active:
        return lists.filter(F.col(C.RANK) <= n)
    judged = judge(lists, rules, n)
    return kept_rows(judged, lists.columns)


def kept_rows(judged: DataFrame, columns: list[str]) -> DataFrame:
    """The kept rows of a `judge` output, with their new ranks and the given columns."""
    kept = judged.filter(F.col(RULE).isNull()).withColumn(C.RANK, F.col(_NEW_RANK))
    return kept.select(*columns)


def removed_counts(judged: DataFrame) -> dict[str, int]:
    """Candidates each rule removed before the lists were full (zeros included)."""
    return removed_counts_per({"": judged})[""]


def removed_counts_per(judged: Mapping[str, DataFrame]) -> dict[str, dict[str, int]]:
    """`removed_counts` of several `judge` outputs (name -> frame) in one Spark action."""
    removed = None
    for name, frame in judged.items():
        rows = frame.filter(F.col(RULE).isin(*RULE_NAMES)).select(
            F.lit(name).alias(_OF), F.col(RULE)
        )
        removed = rows if removed is None else removed.unionByName(rows)
    found: dict[tuple[str, str], int] = {}
    if removed is not None:
        counted = removed.groupBy(_OF, RULE).count().collect()
        found = {(r[_OF], r[RULE]): int(r["count"]) for r in counted}
    return {name: {rule: found.get((name, rule), 0) for rule in RULE_NAMES} for name in judged}


def eligible_items(popular: DataFrame, rules: Rules) -> DataFrame:
    """The popularity ranking (`item_id`, `score`, `rank`) of the available items only,
    ranked 1.. without gaps again (the fallback reads ranks as positions)."""
    if rules.items is None or not rules.config.availability:
        return popular
    status = rules.items.select(C.ITEM_ID, _AVAILABLE)
    joined = popular.join(F.broadcast(status), on=C.ITEM_ID, how="left")
    allow_unknown = rules.config.unknown_items == "allow"
    kept = joined.filter(F.coalesce(F.col(_AVAILABLE), F.lit(allow_unknown)))
    # One row per item: a single ordered pass is cheap.
    order = Window.partitionBy(F.lit(0)).orderBy(C.RANK, C.ITEM_ID)
    return kept.withColumn(C.RANK, F.row_number().over(order)).select(*popular.columns)


def with_exclusions(seen: DataFrame, rules: Rules) -> DataFrame:
    """`seen` (`user_id`, `item_id`) and the excluded pairs: what no list may hold."""
    if rules.excluded is None:
        return seen.select(C.USER_ID, C.ITEM_ID)
    return seen.select(C.USER_ID, C.ITEM_ID).unionByName(rules.excluded)


def filtered(lists: DataFrame, rules: Rules) -> DataFrame:
    """`lists` without the candidates availability and exclusions remove, ranked 1.. again
    (no cap, no cut)."""
    if not rules.filters:
        return lists
    marked = _marked(lists, rules).filter(F.col(RULE).isNull())
    order = Window.partitionBy(C.USER_ID).orderBy(C.RANK, C.ITEM_ID)
    return marked.withColumn(C.RANK, F.row_number().over(order)).select(*lists.columns)
