"""The per-user pass of the evaluation: numpy over one partition of users (no Spark).

The lists and held-out pairs of a set of users arrive together as one Arrow table
(`TAG` 0 and 1, 3 for users who should have a list; every row of a user in the same
partition). Training pairs (`TAG` 2) never come here: their users' histories and the
items' popularity are read off the matrix X built from them in `stages`. Everything per
user is vectorised over the whole partition: lists ordered and de-duplicated by sorts,
hits by a binary search of (user, item) keys, every metric at every K by weighted
bincounts. That replaces per-user arrays and interpreted lambdas in Spark SQL, which
cost several times more for the same work.

Definitions are those of `ranking` (ranking metrics) and `coverage`; the rows the
diversity metrics need come from `pairs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TAG, USER, ITEM, RANK, RELEVANCE = "_tag", "_user", "_item", "_rank", "_relevance"
LIST, RELEVANT, TRAIN, SERVED = 0, 1, 2, 3
METRICS_AT_K = ("precision", "recall", "hit_rate", "mrr", "ndcg", "map")


def metric_names(ks: Sequence[int]) -> list[str]:
    """The ranking metric keys for cut-offs `ks`, in output order."""
    return [f"{m}_at_{k}" for k in ks for m in METRICS_AT_K] + ["map"]


@dataclass
class Partition:
    """One partition's users, decoded to local integer codes.

    Items are coded in sorted order, so ordering by code breaks ties by item id.
    List rows are sorted by (user, position); relevant pairs by (user, gain desc, item).
    All pairs are distinct.
    """

    users: pa.Array
    items: pa.Array
    list_user: np.ndarray
    list_item: np.ndarray
    list_pos: np.ndarray
    list_hit: np.ndarray
    list_gain: np.ndarray
    rel_user: np.ndarray
    rel_item: np.ndarray
    rel_gain: np.ndarray
    served: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.users)

    def per_user(self, user: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(user, weights=weights, minlength=self.n_users)


def read_partition(
    table: pa.Table, *, served_by: str = "relevant", graded: bool = False
) -> Partition:
    """Decode one partition: columns `_tag`, `_user`, `_item`, `_rank` (`_relevance`).

    Rows with a null user or item are dropped (served rows need only a user), list rows
    with a null rank too. A repeated list item keeps its best rank. Relevant pairs have
    gain 1 or, when `graded`, `2 ** relevance - 1` with the largest relevance of a
    repeated pair (null and NaN give gain 0). `served_by` says which users should have
    a list: `relevant` or `given` (rows with tag 3); with any other value (`train`,
    decided from X later) none is marked. Training rows (tag 2) are ignored.
    """
    tag_all = table[TAG].to_numpy()
    keep_rows = (
        pc.is_valid(table[USER]).to_numpy(zero_copy_only=False)
        & (pc.is_valid(table[ITEM]).to_numpy(zero_copy_only=False) | (tag_all == SERVED))
        & (tag_all != TRAIN)
    )
    table = table.filter(pa.array(keep_rows)).combine_chunks()
    tag = table[TAG].to_numpy()
    users_encoded = pc.dictionary_encode(table[USER]).combine_chunks()
    user = users_encoded.indices.to_numpy().astype(np.int64)
    users = users_encoded.dictionary
    items = pc.drop_null(pc.unique(table[ITEM])).sort()
    found_item = pc.index_in(table[ITEM], value_set=items)
    item = pc.fill_null(found_item, -1).to_numpy().astype(np.int64)
    n_items = max(len(items), 1)
    key = user * n_items + item

    is_list = (tag == LIST) & pc.is_valid(table[RANK]).to_numpy(zero_copy_only=False)
    rank = pc.fill_null(table[RANK], 0).to_numpy()[is_list]
    order = np.lexsort((item[is_list], rank, user[is_list]))
    list_key = key[is_list][order]
    # Sorted by rank within a user: the first occurrence of a pair is its best rank.
    list_key = list_key[_first_occurrences(list_key)]
    list_user, list_item = np.divmod(list_key, n_items)
    list_pos = positions(list_user)

    is_rel = tag == RELEVANT
    rel_key = key[is_rel]
    order = np.argsort(rel_key, kind="stable")
    rel_key = rel_key[order]
    starts = np.flatnonzero(np.r_[True, rel_key[1:] != rel_key[:-1]]) if rel_key.size else order
    rel_keys = rel_key[starts]
    if graded:
        relevance = table[RELEVANCE].to_numpy(zero_copy_only=False).astype(np.float64)
        relevance = relevance[is_rel][order]
        best = np.fmax.reduceat(relevance, starts) if starts.size else relevance[:0]
        rel_gain = np.where(np.isnan(best), 0.0, np.power(2.0, best) - 1.0)
    else:
        rel_gain = np.ones(rel_keys.size)
    found = np.searchsorted(rel_keys, list_key)
    found = np.minimum(found, max(rel_keys.size - 1, 0))
    list_hit = rel_keys[found] == list_key if rel_keys.size else np.zeros(list_key.size, bool)
    list_gain = np.where(list_hit, rel_gain[found] if rel_keys.size else 0.0, 0.0)
    rel_user, rel_item = np.divmod(rel_keys, n_items)
    order = np.lexsort((rel_item, -rel_gain, rel_user))

    n_users = len(users)
    if served_by == "relevant":
        served = np.bincount(rel_user, minlength=n_users) > 0
    elif served_by == "given":
        served = np.bincount(user[tag == SERVED], minlength=n_users) > 0
    else:
        served = np.zeros(n_users, dtype=bool)
    return Partition(
        users=users,
        items=items,
        list_user=list_user,
        list_item=list_item,
        list_pos=list_pos,
        list_hit=list_hit,
        list_gain=list_gain,
        rel_user=rel_user[order],
        rel_item=rel_item[order],
        rel_gain=rel_gain[order],
        served=served,
    )


def _first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Mask of the first occurrence of each value, in the array's own order."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.zeros(keys.size, dtype=bool)
    first[order[np.r_[True, ordered[1:] != ordered[:-1]]] if keys.size else order] = True
    return first


def positions(group: np.ndarray) -> np.ndarray:
    """1, 2, ... within each run of equal values of a sorted array."""
    if group.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[starts, group.size])
    return np.arange(group.size) - np.repeat(starts, counts) + 1


def ranking_arrays(part: Partition, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Every ranking metric of every user of the partition (see `ranking`).

    Returns per-user arrays: `n_relevant`, `n_recommended` and each name of
    `metric_names(ks)`; meaningful where `n_relevant` > 0.
    """
    user, pos, hit = part.list_user, part.list_pos, part.list_hit
    n_rel = part.per_user(part.rel_user)
    safe_rel = np.maximum(n_rel, 1)
    discount = 1.0 / np.log2(pos + 1.0)
    ideal_pos = positions(part.rel_user)
    ideal = part.rel_gain / np.log2(ideal_pos + 1.0)
    hits_so_far = np.cumsum(hit)
    before_user = np.repeat(hits_so_far[pos == 1] - hit[pos == 1], _run_lengths(user))
    ap_term = np.where(hit, (hits_so_far - before_user) / pos, 0.0)
    first_hit = np.full(part.n_users, np.inf)
    hit_users, at = np.unique(user[hit], return_index=True)
    first_hit[hit_users] = pos[hit][at]
    out: dict[str, np.ndarray] = {
        "n_relevant": n_rel,
        "n_recommended": part.per_user(user),
    }
    for k in ks:
        in_k = pos <= k
        hits_k = part.per_user(user, hit & in_k)
        dcg = part.per_user(user, part.list_gain * discount * in_k)
        idcg = part.per_user(part.rel_user, ideal * (ideal_pos <= k))
        out[f"precision_at_{k}"] = hits_k / k
        out[f"recall_at_{k}"] = hits_k / safe_rel
        out[f"hit_rate_at_{k}"] = (hits_k > 0).astype(np.float64)
        out[f"mrr_at_{k}"] = np.where(first_hit <= k, 1.0 / first_hit, 0.0)
        out[f"ndcg_at_{k}"] = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)
        out[f"map_at_{k}"] = part.per_user(user, ap_term * in_k) / np.minimum(safe_rel, k)
    out["map"] = part.per_user(user, ap_term) / safe_rel
    return out


def _run_lengths(group: np.ndarray) -> np.ndarray:
    if group.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return np.diff(np.r_[starts, group.size])


def item_partials(part: Partition, k: int) -> dict[str, np.ndarray]:
    """Per item of the partition: top-`k` slots, relevant pairs, hits.

    Users are disjoint across partitions, so summing these over partitions is exact.
    """
    n = len(part.items)
    top = part.list_pos <= k
    counts = {
        "exposure": np.bincount(part.list_item[top], minlength=n),
        "relevant": np.bincount(part.rel_item, minlength=n),
        "hits": np.bincount(part.list_item[top & part.list_hit], minlength=n),
    }
    return {name: values.astype(np.int64) for name, values in counts.items()}
