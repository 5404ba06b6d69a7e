"""The rows the diversity metrics need, from one partition of users, packed per bucket.

Rows (see `diversity_lists`) are an item with its partner items, or an item with a
user whose history (a row of X) is the partner list; they are packed per bucket of
items into a few large rows of raw buffers for `cosine` in `stages`. The training pairs
that make X are packed the same way (`packed_pairs`). Numpy, no Spark.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from recsys_spark.arrays import distinct
from recsys_spark.evaluation._kernels.user_pass import ITEM, USER, Partition, positions

WITHIN, TO_HISTORY = 0, 1  # kinds of diversity rows
# Packed rows hold raw buffers: Spark hands big array columns to Python element by
# element (seconds for a few million), a binary column in one copy.
VOCABS = ("_vocab", "_user_vocab")
PACK_TYPES = {"_items": np.int32, "_users": np.int32, "_offsets": np.int32}
PACK_TYPES.update({"_partners": np.int32, "_weights": np.float64, "_kinds": np.int8})
PACK_COLUMNS = (*VOCABS, *PACK_TYPES)


def diversity_lists(part: Partition, k: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Rows of the diversity metrics, item and user codes of the partition.

    1. `WITHIN`: each top-`k` item with the items after it (users with >= 2 items;
       items in order of times listed in the partition), weight 2 / (n (n - 1)): the
       pairs of the list, each once. As (item, partner offsets, partner codes, weight).
    2. `TO_HISTORY`: each relevant top-`k` item of a user, weight 1 / n; its partners
       are the user's training items, looked up in X where X is whole. As (item, user,
       weight).
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
        *slices(start + 1, count[within], item[order]),
        2.0 / (n * (n - 1.0)),
    )
    hit = part.list_hit[top]
    rows_hits = (item[hit], user[hit], 1.0 / n_top[user[hit]])
    return rows_within, rows_hits


def slices(
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
    """Rows packed into one, items and users as codes into `vocab` and `user_vocab`.

    Diversity rows (`packed_diversity`): row i is item `items[i]` of kind `kinds[i]` and
    weight `weights[i]`, with partners partners[offsets[i] : offsets[i + 1]] (`WITHIN`)
    or the history of user `users[i]` (`TO_HISTORY`; -1 for the other kind). Training
    pairs (`packed_pairs`): (users[i], items[i]), other fields None. Codes keep a packed
    row to ints; its vocabularies map them back to ids.
    """

    vocab: pa.Array
    user_vocab: pa.Array
    items: np.ndarray
    users: np.ndarray
    offsets: np.ndarray | None = None
    partners: np.ndarray | None = None
    weights: np.ndarray | None = None
    kinds: np.ndarray | None = None


def packed_diversity(part: Partition, k: int, n_buckets: int) -> dict[int, Packed]:
    """The partition's diversity rows (`diversity_lists`) packed per item bucket.

    Packing a partition's rows into a few large ones spares Spark a per-row cost on
    hundreds of thousands of rows.
    """
    within, to_history = diversity_lists(part, k)
    n_within, n_hits = within[0].size, to_history[0].size
    item = np.r_[within[0], to_history[0]]
    user = np.r_[np.full(n_within, -1), to_history[1]]
    lengths = np.r_[np.diff(within[1]), np.zeros(n_hits, dtype=np.int64)]
    starts = np.r_[within[1][:-1], np.zeros(n_hits, dtype=np.int64)]
    weights = np.r_[within[3], to_history[2]]
    kinds = np.r_[np.full(n_within, WITHIN), np.full(n_hits, TO_HISTORY)]
    bucket = item_buckets(part.items, n_buckets)[item]
    packs: dict[int, Packed] = {}
    for b in np.unique(bucket):
        sel = np.flatnonzero(bucket == b)
        offsets, partners = slices(starts[sel], lengths[sel], within[2])
        packs[int(b)] = Packed(
            vocab=part.items,
            user_vocab=part.users,
            items=item[sel].astype(np.int32),
            users=user[sel].astype(np.int32),
            offsets=offsets,
            partners=partners.astype(np.int32),
            weights=weights[sel],
            kinds=kinds[sel].astype(np.int8),
        )
    return packs


def packed_pairs(table: pa.Table) -> Packed | None:
    """A partition's training pairs (`USER`, `ITEM`; nulls dropped) packed distinct."""
    valid = pc.and_(pc.is_valid(table[USER]), pc.is_valid(table[ITEM]))
    table = table.filter(valid).combine_chunks()
    if table.num_rows == 0:
        return None
    users = pc.dictionary_encode(table[USER]).combine_chunks()
    items = pc.dictionary_encode(table[ITEM]).combine_chunks()
    user = users.indices.to_numpy().astype(np.int64)
    item = items.indices.to_numpy().astype(np.int64)
    key = distinct(user * len(items.dictionary) + item)
    user, item = np.divmod(key, len(items.dictionary))
    return Packed(
        vocab=items.dictionary,
        user_vocab=users.dictionary,
        items=item.astype(np.int32),
        users=user.astype(np.int32),
    )


def packed_row(pack: Packed) -> dict[str, pa.Array]:
    """A `Packed` as one row of binary columns (see `PACK_COLUMNS`)."""
    buffers: dict[str, bytes] = {}
    for name in VOCABS:
        buffers[name] = ipc_bytes(pa.table({"vocab": getattr(pack, name[1:])}))
    for name in PACK_TYPES:
        values = getattr(pack, name[1:])
        if values is not None:
            buffers[name] = np.ascontiguousarray(values, dtype=PACK_TYPES[name]).tobytes()
    return {name: pa.array([value], pa.binary()) for name, value in buffers.items()}


def unpacked(table: pa.Table, name: str) -> list:
    """The packed column `name` of each row: numpy arrays, or the vocabularies."""
    out: list = []
    for blob in table[name].to_pylist():
        if name in VOCABS:
            out.append(from_ipc(blob).column(0).combine_chunks())
        else:
            out.append(np.frombuffer(blob, dtype=PACK_TYPES[name]))
    return out


def ipc_bytes(table: pa.Table) -> bytes:
    """A whole table as one Arrow IPC stream: a single binary cell for Spark to carry."""
    sink = pa.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(blob: bytes) -> pa.Table:
    """The table of `ipc_bytes`."""
    return pyarrow.ipc.open_stream(blob).read_all()
