"""Deterministic synthetic interaction logs (pure numpy / pandas / pyarrow, no Spark).

The log looks like a shop or streaming log. Item popularity follows a Zipf law
(``popularity_exponent``). User activity is heavy-tailed: each user gets a lognormal
activity weight. Each user belongs to one of ``n_groups`` latent taste groups, and so
does each item. 80 % of a user's interactions come from their own group's items (still
weighted by popularity) and the other 20 % from global popularity. That gives item
co-occurrence and matrix factorisation something to learn. :func:`latent_groups` returns
the true groups.

Events come in *episodes*: a ``view`` of an item, then maybe a ``click`` (35 %), then
maybe an ``add_to_cart`` (30 % of clicks), then maybe a ``purchase`` (45 % of carts), by
the same user on the same item, a few seconds to minutes apart. So every clean purchase
comes after a view of the same item by the same user.

Columns, in order: ``user_id`` (``"u"`` + zero-padded index, width ``len(str(n_users - 1))``),
``item_id`` (``"i"`` + index, likewise), ``event_type`` (one of :data:`EVENT_TYPES`),
``timestamp`` and ``value``. ``value`` (float64) holds dwell/watch seconds for ``view``
(> 0, one decimal place); NaN (empty in CSV, null in JSON/Parquet) for ``click``; the
quantity (an integer >= 1) for ``add_to_cart`` and ``purchase`` (a purchase has the same
quantity as the cart it follows). ``timestamp`` is UTC and lies in
``[start_date, start_date + days)``. With ``"iso"`` it is a string like
``2026-03-01T12:34:56Z`` (whole seconds). With ``"epoch_s"`` or ``"epoch_ms"`` it is an
int64.

Exactly ``n_events`` rows are produced, faults included. Duplicates and bad rows replace
rows; they are not added. A duplicate is an exact copy of the row before it. A bad row
has one of four faults: an empty ``user_id``; a bad timestamp (:data:`BAD_TIMESTAMP` in
iso frames, CSV and JSON; :data:`BAD_EPOCH` in epoch frames and Parquet); an event type
of :data:`BAD_EVENT_TYPE`; or a negative ``value``. Duplicating runs after corruption, so
a duplicate of a bad row is bad too. The bad share is therefore about
``bad_row_fraction * (1 + duplicate_fraction)``.

Determinism: rows are made in fixed blocks of :data:`BLOCK_ROWS`. Block ``b`` draws from
``SeedSequence(seed, spawn_key=(1, b))`` and its faults from ``spawn_key=(2, b)``. So the
rows are identical for any ``chunk_size``, and so are the CSV and JSON bytes. Parquet
holds the same rows, but its row groups follow ``chunk_size``. Turning on faults changes
only the affected rows. Block ``b`` covers its own slice of time, and each block is sorted
by time. So the whole output is in timestamp order, apart from bad timestamps. A funnel
step that would fall past its block's slice is moved back to the slice's last millisecond.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recsys_spark.config import SampleConfig
from recsys_spark.config.sections_data import SAMPLE_FILE_FORMATS
from recsys_spark.data.sample_catalog import (
    Lifecycle,
    catalog_frame,
    item_lifecycle,
    write_atomically,
    write_catalog,
)
from recsys_spark.logs import get_logger

EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase")
COLUMNS: tuple[str, ...] = ("user_id", "item_id", "event_type", "timestamp", "value")
BAD_TIMESTAMP = "not-a-time"
BAD_EPOCH = -1
BAD_EVENT_TYPE = "unknown_event"
BLOCK_ROWS = 65_536

_FUNNEL = (0.35, 0.30, 0.45)  # P(click | view), P(cart | click), P(purchase | cart)
_GAP_MEAN_MS = (30_000.0, 120_000.0, 600_000.0)  # mean delay before each next step
_GROUP_AFFINITY = 0.8
_ACTIVITY_SIGMA = 1.4
_DAY_MS = 86_400_000
log = get_logger(__name__)


@dataclass(frozen=True)
class _World:
    """Per-spec tables shared by all blocks (users, items, groups, id strings)."""

    user_cdf: np.ndarray
    user_group: np.ndarray
    item_group: np.ndarray
    global_cdf: np.ndarray
    group_cdf: np.ndarray  # group g's items have cdf values in (g, g + 1]
    group_items: np.ndarray  # item indices sorted by group
    group_last: np.ndarray  # index into group_items of each group's last item
    user_names: np.ndarray  # object; the extra last entry "" serves index -1
    item_names: np.ndarray
    event_names: np.ndarray
    start_ms: int
    life: Lifecycle  # new and withdrawn items: their windows and stand-ins


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, dtype=np.float64)
    return cdf / cdf[-1]


def _names(prefix: str, n: int, extra: tuple[str, ...] = ()) -> np.ndarray:
    width = len(str(n - 1))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)] + list(extra), dtype=object)


def _build_world(spec: SampleConfig) -> _World:
    rng = _rng(spec.seed, 0)
    rank = rng.permutation(spec.n_items)
    pop = (rank + 1.0) ** -spec.popularity_exponent
    item_group = rng.permutation(spec.n_items) % spec.n_groups
    user_group = rng.integers(0, spec.n_groups, spec.n_users)
    activity = rng.lognormal(0.0, _ACTIVITY_SIGMA, spec.n_users)
    group_items = np.lexsort((np.arange(spec.n_items), item_group))
    g_sorted = item_group[group_items]
    per_group = np.bincount(g_sorted, weights=pop[group_items], minlength=spec.n_groups)
    before = np.cumsum(per_group) - per_group  # popularity mass of the earlier groups
    within = np.cumsum(pop[group_items]) - before[g_sorted]
    group_last = np.cumsum(np.bincount(g_sorted, minlength=spec.n_groups)) - 1
    frac = within / per_group[g_sorted]
    frac[group_last] = 1.0
    start = datetime.fromisoformat(spec.start_date).replace(tzinfo=UTC)
    start_ms = int(start.timestamp()) * 1000
    return _World(
        user_cdf=_cdf(activity),
        user_group=user_group,
        item_group=item_group,
        global_cdf=_cdf(pop),
        group_cdf=g_sorted + frac,
        group_items=group_items,
        group_last=group_last,
        user_names=_names("u", spec.n_users, ("",)),
        item_names=_names("i", spec.n_items),
        start_ms=start_ms,
        event_names=np.array(EVENT_TYPES + (BAD_EVENT_TYPE,), dtype=object),
        life=item_lifecycle(spec, item_group, rank, start_ms),
    )


def latent_groups(spec: SampleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Return the true taste groups, for evaluating models.

    Parameters
    ----------
    spec : SampleConfig
        The spec whose world to build.

    Returns
    -------
    tuple of numpy.ndarray
        ``(user_group, item_group)``. ``user_group[k]`` is the group of the user with
        index ``k`` (id ``"u" + k`` zero-padded), and likewise for items.
    """
    world = _build_world(spec)
    return world.user_group.copy(), world.item_group.copy()


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def _episodes(
    world: _World, rng: np.random.Generator, n: int, lo: int, hi: int
) -> dict[str, np.ndarray]:
    """Draw ``n`` episodes starting in ``[lo, hi)`` ms (one array per attribute)."""
    users = _draw(world.user_cdf, rng.random(n))
    g = world.user_group[users]
    pos = np.minimum(_draw(world.group_cdf, g + rng.random(n)), world.group_last[g])
    own = world.group_items[pos]
    items = np.where(rng.random(n) < _GROUP_AFFINITY, own, _draw(world.global_cdf, rng.random(n)))
    steps = rng.random((n, 3)) < np.array(_FUNNEL)
    length = 1 + np.cumprod(steps, axis=1).sum(axis=1)
    gaps = 1000 + rng.exponential(1.0, (n, 3)) * np.array(_GAP_MEAN_MS)
    offsets = np.zeros((n, 4), np.int64)
    offsets[:, 1:] = np.cumsum(gaps.astype(np.int64), axis=1)
    start = rng.integers(lo, hi, n)
    life = world.life  # an item outside its window (not launched, withdrawn) has a stand-in
    outside = (start < life.launch_ms[items]) | (start >= life.until_ms[items])
    return {
        "user": users,
        "item": np.where(outside, life.substitute[items], items),
        "length": length,
        "offsets": offsets,
        "start": start,
        "dwell": np.maximum(np.round(rng.lognormal(3.0, 1.0, n), 1), 0.1),
        "qty": rng.geometric(0.7, n).astype(np.float64),
    }


def _block(spec: SampleConfig, world: _World, b: int) -> dict[str, np.ndarray]:
    """Rows of block ``b`` as raw arrays, sorted by time, faults applied."""
    first, last = b * BLOCK_ROWS, min((b + 1) * BLOCK_ROWS, spec.n_events)
    total = spec.days * _DAY_MS
    lo = world.start_ms + total * first // spec.n_events
    hi = max(world.start_ms + total * last // spec.n_events, lo + 1)
    n_rows, rng, parts, have = last - first, _rng(spec.seed, 1, b), [], 0
    while have < n_rows:
        parts.append(_episodes(world, rng, int((n_rows - have) / 1.45) + 64, lo, hi))
        have += int(parts[-1]["length"].sum())
    ep = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ends = np.cumsum(ep["length"])
    row_ep = np.repeat(np.arange(len(ends)), ep["length"])[:n_rows]
    stage = np.arange(n_rows) - (ends - ep["length"])[row_ep]
    ts = np.minimum(ep["start"][row_ep] + ep["offsets"][row_ep, stage], hi - 1)
    qty = np.where(stage == 1, np.nan, ep["qty"][row_ep])
    value = np.where(stage == 0, ep["dwell"][row_ep], qty)
    order = np.argsort(ts, kind="stable")
    cols = {"user": ep["user"][row_ep], "item": ep["item"][row_ep], "event": stage}
    cols = {k: v[order] for k, v in cols.items()} | {"ts": ts[order], "value": value[order]}
    if spec.duplicate_fraction or spec.bad_row_fraction:
        _inject_faults(spec, b, cols)
    return cols


def _inject_faults(spec: SampleConfig, b: int, cols: dict[str, np.ndarray]) -> None:
    """Corrupt ~bad_row_fraction rows, then overwrite ~duplicate_fraction rows with copies."""
    rng = _rng(spec.seed, 2, b)
    n = len(cols["ts"])
    r, kind = rng.random(n), rng.integers(0, 4, n)
    bad = (r >= spec.duplicate_fraction) & (r < spec.duplicate_fraction + spec.bad_row_fraction)
    cols["user"][bad & (kind == 0)] = -1
    cols["ts"][bad & (kind == 1)] = BAD_EPOCH
    cols["event"][bad & (kind == 2)] = len(EVENT_TYPES)
    neg = bad & (kind == 3)
    cols["value"][neg] = np.where(np.isnan(cols["value"][neg]), -1.0, -cols["value"][neg])
    dup = r < spec.duplicate_fraction
    dup[0] = False
    src = np.maximum.accumulate(np.where(dup, 0, np.arange(n)))
    for k in cols:
        cols[k] = cols[k][src]


def _frame(spec: SampleConfig, world: _World, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    ts = cols["ts"]
    if spec.timestamp_format == "iso":
        seconds = ts.astype("datetime64[ms]").astype("datetime64[s]")
        stamp = np.datetime_as_string(seconds, unit="s", timezone="UTC").astype(object)
        stamp[ts == BAD_EPOCH] = BAD_TIMESTAMP
    elif spec.timestamp_format == "epoch_s":
        stamp = np.where(ts == BAD_EPOCH, BAD_EPOCH, ts // 1000)
    else:
        stamp = ts
    return pd.DataFrame(
        {
            "user_id": world.user_names[cols["user"]],
            "item_id": world.item_names[cols["item"]],
            "event_type": world.event_names[cols["event"]],
            "timestamp": stamp,
            "value": cols["value"],
        }
    )


def generate_chunks(spec: SampleConfig, chunk_size: int = 1_000_000) -> Iterator[pd.DataFrame]:
    """Generate the log as DataFrames of ``chunk_size`` rows (the last may be shorter).

    Parameters
    ----------
    spec : SampleConfig
        What to generate.
    chunk_size : int
        Rows per yielded frame. It does not change the rows themselves.

    Returns
    -------
    Iterator[pandas.DataFrame]
        A lazy iterator (``chunk_size`` is checked at once). Each frame has the columns
        in :data:`COLUMNS`. The ids, ``event_type`` and iso ``timestamp`` are object
        (str). Epoch ``timestamp`` is int64 and ``value`` is float64.
    """
    ok = isinstance(chunk_size, (int, np.integer)) and not isinstance(chunk_size, bool)
    if not ok or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return _chunks(spec, chunk_size)


def _chunks(spec: SampleConfig, chunk_size: int) -> Iterator[pd.DataFrame]:
    world = _build_world(spec)
    n_blocks = -(-spec.n_events // BLOCK_ROWS)
    pending: list[dict[str, np.ndarray]] = []
    have = 0
    for b in range(n_blocks):
        pending.append(_block(spec, world, b))
        have += len(pending[-1]["ts"])
        while have >= chunk_size or (have and b == n_blocks - 1):
            cols = pending[0]
            if len(pending) > 1:  # slices of one block stay views: no quadratic copying
                cols = {k: np.concatenate([p[k] for p in pending]) for k in cols}
            take = min(chunk_size, have)
            yield _frame(spec, world, {k: v[:take] for k, v in cols.items()})
            pending, have = [{k: v[take:] for k, v in cols.items()}], have - take


def _arrow(spec: SampleConfig, df: pd.DataFrame, stamp_as_text: bool) -> pa.Table:
    """Convert a chunk to Arrow; with ``stamp_as_text`` epoch stamps become strings."""
    ts_type = pa.string() if spec.timestamp_format == "iso" else pa.int64()
    fields = [(c, pa.string()) for c in COLUMNS[:3]]
    schema = pa.schema([*fields, ("timestamp", ts_type), ("value", pa.float64())])
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    if stamp_as_text and spec.timestamp_format != "iso":
        col = table.column("timestamp")
        text = pc.if_else(pc.equal(col, BAD_EPOCH), BAD_TIMESTAMP, pc.cast(col, pa.string()))
        table = table.set_column(3, "timestamp", text)
    return table


def _write_csv(spec: SampleConfig, chunks: Iterator[pd.DataFrame], tmp: str) -> None:
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with open(tmp, "wb") as f:
        f.write((",".join(COLUMNS) + "\n").encode())
        for df in chunks:
            pacsv.write_csv(_arrow(spec, df, stamp_as_text=True), f, write_options=options)


def _write_json(spec: SampleConfig, chunks: Iterator[pd.DataFrame], tmp: str) -> None:
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for df in chunks:
            if spec.timestamp_format != "iso" and spec.bad_row_fraction:
                stamp = df["timestamp"].astype(object)
                df = df.assign(timestamp=stamp.mask(df["timestamp"] == BAD_EPOCH, BAD_TIMESTAMP))
            text = df.to_json(orient="records", lines=True, double_precision=15)
            f.write(text if text.endswith("\n") else text + "\n")


def _write_parquet(spec: SampleConfig, chunks: Iterator[pd.DataFrame], tmp: str) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for df in chunks:
            table = _arrow(spec, df, stamp_as_text=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


_WRITERS: dict[str, Callable[[SampleConfig, Iterator[pd.DataFrame], str], None]] = {
    "csv": _write_csv,
    "json": _write_json,
    "parquet": _write_parquet,
}


def write_sample(
    spec: SampleConfig,
    path: str | Path | None = None,
    fmt: str | None = None,
    chunk_size: int = 1_000_000,
) -> Path:
    """Write the log to one file, chunk by chunk, replacing ``path`` atomically.

    Parameters
    ----------
    spec : SampleConfig
        What to generate.
    path : str or pathlib.Path, optional
        Target file (default ``spec.path``). Parent folders are created. The data goes to
        a temporary file in the same folder, which then replaces ``path`` (:func:`os.replace`).
    fmt : str, optional
        Default ``spec.format``: ``"csv"`` (with a header), ``"json"`` (JSON lines) or
        ``"parquet"``.
    chunk_size : int
        Rows generated and written at a time (this bounds memory).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    fmt = spec.format if fmt is None else fmt
    if fmt not in _WRITERS:
        raise ValueError(f"fmt must be one of {SAMPLE_FILE_FORMATS}, got {fmt!r}")
    chunks = generate_chunks(spec, chunk_size)  # validates chunk_size before any file is made
    target = spec.path if path is None else path
    return write_atomically(target, lambda tmp: _WRITERS[fmt](spec, chunks, tmp))


def write_sample_catalog(spec: SampleConfig, path: str | Path | None = None) -> Path:
    """Write the sample's item catalogue (CSV) to `path` (default `spec.catalog_path`)."""
    world = _build_world(spec)
    frame = catalog_frame(spec, world.item_names, world.item_group, world.life)
    written = write_catalog(frame, spec.catalog_path if path is None else path)
    log.info(
        "wrote the catalogue of %d items (%d new, %d withdrawn) to %s",
        len(frame),
        int(world.life.new.sum()),
        int(world.life.withdrawn.sum()),
        written,
    )
    return written


def generate_sample(spec: SampleConfig) -> Path:
    """Generate the log `spec` describes into `spec.path` (as `spec.format`), and its item
    catalogue into `spec.catalog_path` (CSV, unless ""); no Spark needed."""
    start = time.perf_counter()
    path = write_sample(spec)
    if spec.catalog_path:
        write_sample_catalog(spec)
    log.info(
        "wrote %d events (%d users, %d items) to %s in %.1f s",
        spec.n_events,
        spec.n_users,
        spec.n_items,
        path,
        time.perf_counter() - start,
    )
    return path
