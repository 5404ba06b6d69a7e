"""Recommendations as people read them: titles, categories and the reason's title.

`recommendations_display` (a Delta table under the storage root, rewritten whenever
`recommendations_latest` moves) joins the newest published lists with the catalogue:
what a dashboard, an e-mail job or a support agent reads. `example_users` picks a few
users with their titled history, recommendations and reasons for the night's report
and notebook 03.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog import schemas as S
from recsys_spark.config import StorageConfig
from recsys_spark.io import delta
from recsys_spark.logs import get_logger

log = get_logger(__name__)
BECAUSE_TITLE = "because_title"


def display_lists(recs: DataFrame, items: DataFrame) -> DataFrame:
    """`recs` with `title`, `categories` of each item and `because_title` of its reason
    (null where the catalogue does not list the item)."""
    names = items.select(C.ITEM_ID, S.TITLE, S.CATEGORIES)
    reasons = items.select(
        F.col(C.ITEM_ID).alias(C.BECAUSE_ITEM_ID), F.col(S.TITLE).alias(BECAUSE_TITLE)
    )
    return recs.join(F.broadcast(names), on=C.ITEM_ID, how="left").join(
        F.broadcast(reasons), on=C.BECAUSE_ITEM_ID, how="left"
    )


def write_display(spark: SparkSession, storage: StorageConfig, latest: DataFrame) -> bool:
    """Replace `recommendations_display` with `latest` joined to the catalogue (one
    commit). Without an `items` table nothing is written; returns whether it was."""
    items_path = storage.table(tables.ITEMS)
    if not delta.table_exists(spark, items_path):
        return False
    shown = display_lists(latest, delta.read_table(spark, items_path))
    delta.overwrite(shown, storage.table(tables.RECOMMENDATIONS_DISPLAY))
    return True


def example_users(
    recs: DataFrame, history: DataFrame, items: DataFrame | None, *, users: int = 3
) -> list[dict[str, Any]]:
    """A few users with model lists and reasons: their newest history items, their
    recommendations and each one's reason, titled when the catalogue knows the item.

    Users are the first ones by a hash of their id among those whose list has a reason
    (deterministic, and not always the same id prefix). `history`: `user_id`,
    `item_id`, `last_ts`.
    """
    with_reason = recs.filter(F.col(C.BECAUSE_ITEM_ID).isNotNull()).select(C.USER_ID).distinct()
    chosen = [
        r[C.USER_ID]
        for r in with_reason.orderBy(F.xxhash64(C.USER_ID), C.USER_ID).limit(users).collect()
    ]
    if not chosen:
        return []
    titles: dict[str, str] = {}
    if items is not None:
        wanted = recs.filter(F.col(C.USER_ID).isin(chosen)).select(C.ITEM_ID, C.BECAUSE_ITEM_ID)
        ids = {v for r in wanted.collect() for v in r if v is not None}
        ids |= {
            r[C.ITEM_ID]
            for r in history.filter(F.col(C.USER_ID).isin(chosen)).select(C.ITEM_ID).collect()
        }
        found = items.filter(F.col(C.ITEM_ID).isin(sorted(ids))).select(C.ITEM_ID, S.TITLE)
        titles = {r[C.ITEM_ID]: r[S.TITLE] for r in found.collect() if r[S.TITLE]}

    def named(item: str | None) -> str | None:
        return None if item is None else f"{titles[item]} ({item})" if item in titles else item

    out = []
    for user in chosen:
        past = (
            history.filter(F.col(C.USER_ID) == user)
            .orderBy(F.desc(C.LAST_TS), C.ITEM_ID)
            .select(C.ITEM_ID)
            .limit(10)
            .collect()
        )
        listed = recs.filter(F.col(C.USER_ID) == user).orderBy(C.RANK).collect()
        out.append(
            {
                "user_id": user,
                "history": [named(r[C.ITEM_ID]) for r in past],
                "recommendations": [
                    {
                        "rank": r[C.RANK],
                        "item": named(r[C.ITEM_ID]),
                        "because": named(r[C.BECAUSE_ITEM_ID]),
                        "source": r[C.SOURCE],
                    }
                    for r in listed
                ],
            }
        )
    return out
