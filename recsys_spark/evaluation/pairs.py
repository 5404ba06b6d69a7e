"""The item pairs the diversity metrics need, from one partition of users, packed per bucket.

Rows (see `diversity_lists`) are an item, its partner items and a weight; they are
packed per bucket of items into a few large rows of raw buffers, with the partition's
rows of X (its users' histories), for `cosine` in `stages`. Numpy, no Spark.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.ipc

from recsys_spark.evaluation.user_pass import Partition, positions

WITHIN, TO_HISTORY = 0, 1  # kinds of diversity rows
# Packed rows hold raw buffers: Spark hands big array columns to Python element by
# element (seconds for a few million), a binary column in one copy.
PACK_COLUMNS = ("_vocab", "_items", "_offsets", "_partners", "_weights", "_kinds")
PACK_TYPES = {"_items": np.int32, "_offsets": np.int32, "_partners": np.int32}
PACK_TYPES.update({"_weights": np.float64, "_kinds": np.int8})


def diversity_lists(
    part: Partition, k: int
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]:
    """Rows of the diversity metrics, as (item, partner offsets, partner codes, weight).

    1. each top-`k` item with the items after it (users with >= 2 items; items in
       order of times listed in the partition), weight 2 / (n (n - 1)): the pairs of
       the list, each once;
    2. each relevant top-`k` item of a user with a history, with that history, weight
       1 / n;
    3. each user's history (the rows of the binary matrix X), item and weight unused.
    """
    top = part.list_pos <= k
    user, item = part.list_user[top], part.list_item[top]
    n_top = part.per_user(user).astype(np.int64)
    # Pairs of a list are symmetric: list each item with the items after it in order of
    # (times listed desc, item), so the cosine rows (X^T X)[a, :] computed for the
    # items a are concentrated on frequently listed items: fewer distinct rows.
    listed = np.bincount(item, minlength=len(part.items))
    order = np.lexsort((item, -listed[item], user))
    count = n_top[user] - positions(user[order])  # items after this one
    within = count > 0
    start = np.flatnonzero(within)
    n = n_top[user[order][within]].astype(np.float64)
    rows_within = (
        item[order][within],
        *_slices(start + 1, count[within], item[order]),
        2.0 / (n * (n - 1.0)),
    )
    history = part.per_user(part.hist_user).astype(np.int64)
    hist_start = np.cumsum(history) - history
    relevant = part.list_hit[top] & (history[user] > 0)
    who = user[relevant]
    rows_hits = (
        item[relevant],
        *_slices(hist_start[who], history[who], part.hist_item),
        1.0 / n_top[who],
    )
    known = np.flatnonzero(history > 0)
    rows_x = (
        np.zeros(known.size, dtype=np.int64),
        *_slices(hist_start[known], history[known], part.hist_item),
        np.zeros(known.size),
    )
    return rows_within, rows_hits, rows_x


def _slices(
    start: np.ndarray, length: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """List offsets and flattened values of values[start[i] : start[i] + length[i]]."""
    offsets = np.r_[0, np.cumsum(length)].astype(np.int32)
    index = np.repeat(start - offsets[:-1], length) + np.arange(offsets[-1])
    return offsets, values[index]


def item_buckets(items: pa.Array, n_buckets: int) -> np.ndarray:
    """A bucket 0..n_buckets - 1 per item value, the same in every process."""
    if n_buckets <= 1:
        return np.zeros(len(items), dtype=np.int64)
    if pa.types.is_integer(items.type):
        return np.mod(items.to_numpy(zero_copy_only=False).astype(np.int64), n_buckets)
    # CRC32 of the text: deterministic, unlike Python's salted hash().
    return np.fromiter(
        (zlib.crc32(str(v).encode()) % n_buckets for v in items.to_pylist()),
        dtype=np.int64,
        count=len(items),
    )


@dataclass
class Packed:
    """Ragged rows packed into one, items as codes into `vocab` (the partition's items).

    Row i is `items[i]` with partners partners[offsets[i] : offsets[i + 1]]. Codes keep
    the packed row to ints; the one vocabulary per row maps them back to item ids.
    """

    vocab: pa.Array
    items: np.ndarray | None
    offsets: np.ndarray
    partners: np.ndarray
    weights: np.ndarray | None
    kinds: np.ndarray | None


def packed_diversity(part: Partition, k: int, n_buckets: int) -> tuple[dict[int, Packed], Packed]:
    """The partition's diversity rows packed per item bucket, and its rows of X packed.

    See `diversity_lists`; kinds `WITHIN` and `TO_HISTORY`. Packing a partition's rows
    into a few large ones spares Spark a per-row cost on hundreds of thousands of rows.
    """
    within, to_history, x_rows = diversity_lists(part, k)
    item = np.r_[within[0], to_history[0]]
    lengths = np.r_[np.diff(within[1]), np.diff(to_history[1])]
    values = np.r_[within[2], to_history[2]]
    starts = np.r_[within[1][:-1], to_history[1][:-1] + within[1][-1]]
    weights = np.r_[within[3], to_history[3]]
    kinds = np.r_[np.full(within[0].size, WITHIN), np.full(to_history[0].size, TO_HISTORY)]
    bucket = item_buckets(part.items, n_buckets)[item]
    packs: dict[int, Packed] = {}
    for b in np.unique(bucket):
        sel = np.flatnonzero(bucket == b)
        offsets, partners = _slices(starts[sel], lengths[sel], values)
        packs[int(b)] = Packed(
            vocab=part.items,
            items=item[sel].astype(np.int32),
            offsets=offsets,
            partners=partners.astype(np.int32),
            weights=weights[sel],
            kinds=kinds[sel].astype(np.int8),
        )
    x = Packed(
        vocab=part.items,
        items=None,
        offsets=x_rows[1],
        partners=x_rows[2].astype(np.int32),
        weights=None,
        kinds=None,
    )
    return packs, x


def packed_row(pack: Packed) -> dict[str, pa.Array]:
    """A `Packed` as one row of binary columns (see `PACK_COLUMNS`)."""
    sink = pa.BufferOutputStream()
    batch = pa.record_batch([pack.vocab], names=["vocab"])
    with pyarrow.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    buffers: dict[str, bytes] = {"_vocab": sink.getvalue().to_pybytes()}
    for name in PACK_TYPES:
        values = getattr(pack, name[1:])
        if values is not None:
            buffers[name] = np.ascontiguousarray(values, dtype=PACK_TYPES[name]).tobytes()
    return {name: pa.array([value], pa.binary()) for name, value in buffers.items()}


def unpacked(table: pa.Table, name: str) -> list:
    """The packed column `name` of each row: numpy arrays, or the vocabularies."""
    out: list = []
    for blob in table[name].to_pylist():
        if name == "_vocab":
            out.append(pyarrow.ipc.open_stream(blob).read_all().column(0).combine_chunks())
        else:
            out.append(np.frombuffer(blob, dtype=PACK_TYPES[name]))
    return out
