"""The two per-partition steps of the evaluation and the row layout between them.

`user_partition` (stage 1, a partition of users) emits rows of four kinds: `STATS`
(metric sums per history length), `ITEMS` (per-item partial counts), `PACKED` (the
diversity rows of one bucket of items) and `X_ROWS` (the partition's rows of X).
`route_partition` (stage 2) gets one bucket's packed rows with every X row, or the
statistics and item counts, and emits named sums. `frames` wires them in Spark.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys_spark.evaluation import cosine, item_stats, pairs
from recsys_spark.evaluation import user_pass as up

ROW, BUCKET, HISTORY = "_row", "_bucket", "_history"
STATS, ITEMS, PACKED, X_ROWS = 0, 1, 2, 3
ITEM_COUNTS = ("_exposure", "_popularity", "_relevant", "_hits")
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
    """Stage 1 on one partition of users (see the module docstring)."""
    table = arrow_table(batches)
    if table is None:
        return
    part = up.read_partition(table, served_by=served_by, graded=graded)
    metrics = up.ranking_arrays(part, ks)
    history = up.history_lengths(part)
    evaluated = metrics["n_relevant"] > 0
    n_top = np.minimum(metrics["n_recommended"], k)
    lengths, group = np.unique(history, return_inverse=True)

    def by_length(weights: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=weights, minlength=lengths.size)

    counts = {
        "_evaluated": evaluated,
        "_served": part.served,
        "_served_full": part.served & (n_top >= k),
        "_train_users": history > 0,
        "_list_users": n_top > 0,
        "_pair_users": n_top >= 2,
    }
    stats: dict[str, object] = {HISTORY: lengths}
    stats.update({n: by_length(np.where(evaluated, v, 0.0)) for n, v in metrics.items()})
    stats.update({n: by_length(v).astype(np.int64) for n, v in counts.items()})
    yield from _rows(schema, STATS, buckets, lengths.size, stats)
    partials = up.item_partials(part, k)
    present = np.flatnonzero(sum(partials.values()) > 0)
    item_values: dict[str, object] = {up.ITEM: part.items.take(pa.array(present))}
    for name, values in zip(ITEM_COUNTS, partials.values(), strict=True):
        item_values[name] = values[present]
    yield from _rows(schema, ITEMS, buckets, present.size, item_values)
    if buckets:
        packs, x = pairs.packed_diversity(part, k, buckets)
        for bucket, pack in packs.items():
            yield from _rows(schema, PACKED, bucket, 1, pairs.packed_row(pack))
        yield from _rows(schema, X_ROWS, -1, 1, pairs.packed_row(x))


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
    batches: Iterator[pa.RecordBatch], *, names: list[str], head_share: float, n_points: int
) -> Iterator[pa.RecordBatch]:
    """Stage 2 on one partition: a bucket of pair cosines, or the summary."""
    table = arrow_table(batches)
    if table is None:
        return
    row = table[ROW].to_numpy()
    out: list[tuple[str, int, str, float]] = []
    stats = table.filter(pa.array(row == STATS))
    if stats.num_rows:
        lengths, group = np.unique(stats[HISTORY].to_numpy(), return_inverse=True)
        for name in [*names, *COUNTS]:
            values = pc.fill_null(stats[name], 0).to_numpy().astype(np.float64)
            sums = np.bincount(group, weights=values, minlength=lengths.size)
            out += [("stats", int(h), name, float(v)) for h, v in zip(lengths, sums, strict=True)]
    items = table.filter(pa.array(row == ITEMS))
    if items.num_rows:
        out += _item_summary(items, head_share=head_share, n_points=n_points)
    packed = table.filter(pa.array(row == PACKED))
    if packed.num_rows:
        bucket = int(packed[BUCKET][0].as_py())
        within, unexpected = _bucket_terms(packed, table.filter(pa.array(row == X_ROWS)))
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


def _item_summary(
    items: pa.Table, *, head_share: float, n_points: int
) -> list[tuple[str, int, str, float]]:
    """Per-item partial counts summed, then coverage sums, buckets and curves."""
    vocab = pc.unique(items[up.ITEM]).sort()  # item id order: ties by item id
    code = pc.index_in(items[up.ITEM], value_set=vocab).to_numpy()
    totals = [
        np.bincount(code, weights=pc.fill_null(items[n], 0).to_numpy(), minlength=len(vocab))
        for n in ITEM_COUNTS
    ]
    exposure, popularity, relevant, hits = totals
    in_head = item_stats.head_items(popularity, head_share)
    sums = item_stats.coverage_sums(exposure, popularity, in_head)
    sums.update(item_stats.item_bucket_sums(exposure, relevant, hits, in_head, popularity > 0))
    out = [("items", 0, name, value) for name, value in sums.items()]
    curves = item_stats.curve_points(exposure, popularity, n_points=n_points)
    for name, points in curves.items():
        out += [("curve", i, name, float(v)) for i, v in enumerate(points)]
    return out


def _bucket_terms(packed: pa.Table, x_rows: pa.Table) -> tuple[float, float]:
    """Concatenate a bucket's packed rows and the copies of X, then `cosine`.

    Each packed row codes its items into its own partition's vocabulary; codes are
    moved onto one bucket vocabulary (that of X) by an index per vocabulary.
    """
    x_vocabs = pairs.unpacked(x_rows, "_vocab")
    if not x_vocabs:  # nothing trained: every cosine is 0, and no row has a history
        return 0.0, 0.0
    vocab = pc.drop_null(pc.unique(pa.chunked_array(x_vocabs)))

    def recoded(table: pa.Table, column: str) -> np.ndarray:
        vocabs = pairs.unpacked(table, "_vocab") if table is not x_rows else x_vocabs
        parts = [
            _indices(v, vocab)[codes]
            for v, codes in zip(vocabs, pairs.unpacked(table, column), strict=True)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def lengths(table: pa.Table) -> np.ndarray:
        parts = [np.diff(offsets) for offsets in pairs.unpacked(table, "_offsets")]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def flat(column: str) -> np.ndarray:
        parts = pairs.unpacked(packed, column)
        return np.concatenate(parts) if parts else np.zeros(0)

    return cosine.diversity_terms(
        lengths(x_rows),
        recoded(x_rows, "_partners"),
        len(vocab),
        recoded(packed, "_items"),
        lengths(packed),
        recoded(packed, "_partners"),
        flat("_weights"),
        flat("_kinds"),
    )


def _indices(values: pa.Array, vocab: pa.Array) -> np.ndarray:
    """Position of each value in `vocab`, -1 for values not in it (or null)."""
    found = pc.index_in(values, value_set=vocab)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
