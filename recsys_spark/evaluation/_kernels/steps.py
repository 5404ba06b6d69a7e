"""The per-partition steps of the evaluation and the row layout between them.

Stage 1 has two kinds of tasks. `user_partition` (a partition of users: their lists,
held-out pairs, served marks) emits one `USERS` row (every metric and flag of each of
its users, as a table in one binary cell), one `ITEMS` row (per-item partial counts,
the same way) and per bucket of items one `PACKED` row (its diversity rows).
`train_partition` (a partition of the training pairs, as they lie: no shuffle) emits
one `X_ROWS` row, its distinct (user, item) pairs packed. `route_partition` (stage 2)
gets one bucket's packed rows with every X row; bucket 0 also gets every `USERS` and
`ITEMS` row for the summary. It emits named sums. `frames` wires them in Spark.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recsys_spark.evaluation._kernels import cosine, item_stats, pairs
from recsys_spark.evaluation._kernels import user_pass as up

ROW, BUCKET = "_row", "_bucket"
# The binary column of `USERS` and `ITEMS` rows: a partition's whole table, so Spark
# carries (and the summary reads) one cell per partition, not one row per user: with a
# row per user, reading them made bucket 0 finish 0.6 s after the others.
TABLE = "_table"
USERS, ITEMS, PACKED, X_ROWS = 0, 1, 2, 3
# Per user from stage 1 (0/1): evaluated, served (unless decided from X), full top-k list,
# any list, a list of two or more.
USER_FLAGS = ("_evaluated", "_served", "_full", "_list_users", "_pair_users")
ITEM_COUNTS = ("_exposure", "_relevant", "_hits")  # popularity comes from X
# Sums per history length that reach the driver.
COUNTS = ("_evaluated", "_served", "_served_full", "_train_users", "_list_users", "_pair_users")
RESULT_SCHEMA = "_part string, _key long, _name string, _value double"


def arrow_table(batches: Iterator[pa.RecordBatch]) -> pa.Table | None:
    batch_list = list(batches)
    if not batch_list:
        return None
    table = pa.Table.from_batches(batch_list)
    return table if table.num_rows else None


def per_user_partition(
    batches: Iterator[pa.RecordBatch], *, schema: pa.Schema, ks: tuple[int, ...], graded: bool
) -> Iterator[pa.RecordBatch]:
    table = arrow_table(batches)
    if table is None:
        return
    part = up.read_partition(table, graded=graded)
    metrics = up.ranking_arrays(part, ks)
    who = np.flatnonzero(metrics["n_relevant"] > 0)
    columns: dict[str, object] = {up.USER: part.users.take(pa.array(who))}
    columns.update({name: values[who] for name, values in metrics.items()})
    yield from pa.table(columns, schema=schema).to_batches()


def user_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    schema: pa.Schema,
    ks: tuple[int, ...],
    k: int,
    served_by: str,
    graded: bool,
    buckets: int,
) -> Iterator[pa.RecordBatch]:
    """Stage 1 on one partition of users (see the module docstring).

    `USERS` and `ITEMS` rows go to the summary, in bucket 0.
    """
    table = arrow_table(batches)
    if table is None:
        return
    part = up.read_partition(table, served_by=served_by, graded=graded)
    metrics = up.ranking_arrays(part, ks)
    evaluated = metrics["n_relevant"] > 0
    n_top = np.minimum(metrics["n_recommended"], k)
    flags = (evaluated, part.served, n_top >= k, n_top > 0, n_top >= 2)
    users: dict[str, object] = {up.USER: part.users}
    users.update({n: np.where(evaluated, v, 0.0) for n, v in metrics.items()})
    users.update({n: f.astype(np.int64) for n, f in zip(USER_FLAGS, flags, strict=True)})
    yield from _rows(schema, USERS, 0, 1, _table_cell(users))
    partials = up.item_partials(part, k)
    present = np.flatnonzero(sum(partials.values()) > 0)
    item_values: dict[str, object] = {up.ITEM: part.items.take(pa.array(present))}
    for name, values in zip(ITEM_COUNTS, partials.values(), strict=True):
        item_values[name] = values[present]
    yield from _rows(schema, ITEMS, 0, 1, _table_cell(item_values))
    if buckets:
        for bucket, pack in pairs.packed_diversity(part, k, buckets).items():
            yield from _rows(schema, PACKED, bucket, 1, pairs.packed_row(pack))


def train_partition(
    batches: Iterator[pa.RecordBatch], *, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Stage 1 on one partition of training pairs: one `X_ROWS` row (bucket set later)."""
    table = arrow_table(batches)
    pack = pairs.packed_pairs(table) if table is not None else None
    if pack is not None:
        yield from _rows(schema, X_ROWS, -1, 1, pairs.packed_row(pack))


def _table_cell(columns: dict[str, object]) -> dict[str, pa.Array]:
    """Columns as one `TABLE` cell (see `pairs.ipc_bytes`)."""
    return {TABLE: pa.array([pairs.ipc_bytes(pa.table(columns))], pa.binary())}


def _cells_table(table: pa.Table, kind: int) -> pa.Table | None:
    """The `TABLE` cells of the rows of `kind`, as one table; None without any."""
    blobs = table.filter(pa.array(table[ROW].to_numpy() == kind))[TABLE].to_pylist()
    return pa.concat_tables([pairs.from_ipc(b) for b in blobs]) if blobs else None


def _rows(
    schema: pa.Schema, kind: int, bucket: int, n: int, values: dict[str, object]
) -> Iterator[pa.RecordBatch]:
    """`n` rows of `schema`: `_row` = `kind`, `_bucket`, the given columns, nulls elsewhere."""
    if n == 0:
        return
    columns = []
    for schema_field in schema:
        value = values.get(schema_field.name)
        if schema_field.name == ROW:
            columns.append(pa.array(np.full(n, kind, dtype=np.int32)))
        elif schema_field.name == BUCKET:
            columns.append(pa.array(np.full(n, bucket, dtype=np.int32)))
        elif value is None:
            columns.append(pa.nulls(n, type=schema_field.type))
        elif isinstance(value, pa.Array):
            columns.append(value.cast(schema_field.type))
        else:
            columns.append(pa.array(value, type=schema_field.type))
    yield from pa.Table.from_arrays(columns, schema=schema).to_batches()


def route_partition(
    batches: Iterator[pa.RecordBatch],
    *,
    names: list[str],
    served_by: str,
    head_share: float,
    n_points: int,
) -> Iterator[pa.RecordBatch]:
    """Stage 2 on one partition: a bucket of pair cosines, and in bucket 0 the summary.

    The summary shares bucket 0's task (and its X) rather than waiting for a core of
    its own after the buckets.
    """
    table = arrow_table(batches)
    if table is None:
        return
    row = table[ROW].to_numpy()
    x = XMatrix.of(table.filter(pa.array(row == X_ROWS)))
    out: list[tuple[str, int, str, float]] = []
    if int(table[BUCKET][0].as_py()) == 0:
        users = _cells_table(table, USERS)
        out += _user_summary(users, x, names=names, served_by=served_by)
        items = _cells_table(table, ITEMS)
        out += _item_summary(items, x, head_share=head_share, n_points=n_points)
    packed = table.filter(pa.array(row == PACKED))
    if packed.num_rows:
        bucket = int(packed[BUCKET][0].as_py())
        within, unexpected = _bucket_terms(packed, x)
        out += [("diversity", bucket, "within", within)]
        out += [("diversity", bucket, "unexpected", unexpected)]
    parts, keys, labels, values = zip(*out, strict=True) if out else ((), (), (), ())
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(parts, pa.string()),
            pa.array(keys, pa.int64()),
            pa.array(labels, pa.string()),
            pa.array(values, pa.float64()),
        ],
        names=["_part", "_key", "_name", "_value"],
    )


@dataclass
class XMatrix:
    """X, the binary user x item matrix of the training pairs, with its vocabularies."""

    users: pa.Array
    items: pa.Array
    matrix: sp.csr_array

    @classmethod
    def of(cls, x_rows: pa.Table) -> XMatrix | None:
        """X from every packed row of training pairs; None without any."""
        if x_rows.num_rows == 0:
            return None
        user_vocabs = pairs.unpacked(x_rows, "_user_vocab")
        item_vocabs = pairs.unpacked(x_rows, "_vocab")
        users = pc.unique(pa.chunked_array(user_vocabs))
        items = pc.unique(pa.chunked_array(item_vocabs))
        rows = _recoded(user_vocabs, pairs.unpacked(x_rows, "_users"), users)
        cols = _recoded(item_vocabs, pairs.unpacked(x_rows, "_items"), items)
        return cls(users, items, cosine.binary_matrix(rows, cols, (len(users), len(items))))

    def history(self) -> np.ndarray:
        """Distinct training items of each user of `users`."""
        return np.diff(self.matrix.indptr).astype(np.int64)

    def popularity(self) -> np.ndarray:
        """Distinct training users of each item of `items`."""
        return np.bincount(self.matrix.indices, minlength=len(self.items)).astype(np.int64)


def _user_summary(
    users: pa.Table | None, x: XMatrix | None, *, names: list[str], served_by: str
) -> list[tuple[str, int, str, float]]:
    """Every per-user column summed per history length (users of X without rows too)."""
    n_rows = users.num_rows if users is not None else 0
    history = x.history() if x is not None else np.zeros(0, np.int64)
    found = np.full(n_rows, -1)
    if x is not None and users is not None and n_rows:
        found = _indices(users[up.USER], x.users)
    known = found >= 0
    own_history = np.zeros(found.size, dtype=np.int64)
    own_history[known] = history[found[known]]
    train_only = np.ones(history.size, dtype=bool)
    train_only[found[known]] = False
    lengths = np.r_[own_history, history[train_only]]
    padding = np.zeros(int(train_only.sum()))

    def column(name: str) -> np.ndarray:
        if users is None or not n_rows:
            return padding.copy()
        values = pc.fill_null(users[name], 0).to_numpy()
        return np.r_[values.astype(np.float64), padding]

    sums = {name: column(name) for name in [*names, "_evaluated", "_list_users", "_pair_users"]}
    served = lengths > 0 if served_by == "train" else column("_served") > 0
    sums["_served"] = served.astype(np.float64)
    sums["_served_full"] = (served & (column("_full") > 0)).astype(np.float64)
    sums["_train_users"] = (lengths > 0).astype(np.float64)
    distinct, group = np.unique(lengths, return_inverse=True)
    out = []
    for name, values in sums.items():
        per_length = np.bincount(group, weights=values, minlength=distinct.size)
        out += [
            ("stats", int(h), name, float(v)) for h, v in zip(distinct, per_length, strict=True)
        ]
    return out


def _item_summary(
    items: pa.Table | None, x: XMatrix | None, *, head_share: float, n_points: int
) -> list[tuple[str, int, str, float]]:
    """Per-item partial counts summed with X's popularity, then coverage, buckets, curves."""
    n_rows = items.num_rows if items is not None else 0
    ids = [items[up.ITEM].combine_chunks()] if items is not None and n_rows else []
    if x is not None:
        ids.append(x.items.cast(ids[0].type) if ids else x.items)
    if not ids:
        return []
    all_ids = pa.concat_arrays(ids)
    vocab = pc.unique(all_ids).sort()  # item id order: ties by item id
    code = pc.index_in(all_ids, value_set=vocab).to_numpy()
    totals = {}
    for name in ITEM_COUNTS:
        values = np.zeros(0)
        if items is not None and n_rows:
            values = pc.fill_null(items[name], 0).to_numpy()
        totals[name] = np.bincount(code[:n_rows], weights=values, minlength=len(vocab))
    popularity = x.popularity() if x is not None else np.zeros(0)
    totals["_popularity"] = np.bincount(code[n_rows:], weights=popularity, minlength=len(vocab))
    exposure, popularity, relevant, hits = (
        totals[n] for n in ("_exposure", "_popularity", "_relevant", "_hits")
    )
    in_head = item_stats.head_items(popularity, head_share)
    sums = item_stats.coverage_sums(exposure, popularity, in_head)
    sums.update(item_stats.item_bucket_sums(exposure, relevant, hits, in_head, popularity > 0))
    out = [("items", 0, name, value) for name, value in sums.items()]
    curves = item_stats.curve_points(exposure, popularity, n_points=n_points)
    for name, points in curves.items():
        out += [("curve", i, name, float(v)) for i, v in enumerate(points)]
    return out


def _bucket_terms(packed: pa.Table, x: XMatrix | None) -> tuple[float, float]:
    """A bucket's packed rows on X's codes, the history rows' partners read off X, `cosine`.

    Each packed row codes its items and users into its own partition's vocabularies;
    codes are moved onto X's by an index per vocabulary.
    """
    if x is None:  # nothing trained: every cosine is 0, and no row has a history
        return 0.0, 0.0
    item_vocabs = pairs.unpacked(packed, "_vocab")
    item = _recoded(item_vocabs, pairs.unpacked(packed, "_items"), x.items)
    partners = _recoded(item_vocabs, pairs.unpacked(packed, "_partners"), x.items)
    user_vocabs = pairs.unpacked(packed, "_user_vocab")
    user = _recoded(user_vocabs, pairs.unpacked(packed, "_users"), x.users)
    offsets = pairs.unpacked(packed, "_offsets")
    # Row i's partners: its own (WITHIN) from `partners`, or its user's row of X.
    base = np.cumsum([0, *(o[-1] for o in offsets[:-1])])
    own_start = np.concatenate([o[:-1] + b for o, b in zip(offsets, base, strict=True)])
    own_length = np.concatenate([np.diff(o) for o in offsets]).astype(np.int64)
    indptr = x.matrix.indptr
    known = user >= 0
    safe = np.where(known, user, 0)
    x_length = np.where(known, indptr[safe + 1] - indptr[safe], 0)
    start = np.where(own_length > 0, own_start, partners.size + indptr[safe])
    length = own_length + x_length
    _, flat = pairs.slices(start, length, np.r_[partners, x.matrix.indices].astype(np.int64))
    return cosine.diversity_terms(
        x.matrix,
        item,
        length,
        flat,
        np.concatenate(pairs.unpacked(packed, "_weights")),
        np.concatenate(pairs.unpacked(packed, "_kinds")),
    )


def _recoded(vocabs: list[pa.Array], codes: list[np.ndarray], vocab: pa.Array) -> np.ndarray:
    """Codes into each row's vocabulary moved onto `vocab` (-1 stays -1; absent: -1)."""
    parts = []
    for row_vocab, row_codes in zip(vocabs, codes, strict=True):
        index = np.r_[_indices(row_vocab.cast(vocab.type), vocab), -1]
        parts.append(index[row_codes])  # code -1 picks the appended -1
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _indices(values: pa.Array | pa.ChunkedArray, vocab: pa.Array) -> np.ndarray:
    """Position of each value in `vocab`, -1 for values not in it (or null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    found = pc.index_in(values.cast(vocab.type), value_set=vocab)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
