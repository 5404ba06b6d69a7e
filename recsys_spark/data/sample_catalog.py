"""The synthetic sample's item catalogue and item lifecycle (pure numpy / pandas).

Every item of the sample (see `recsys_spark.data.sample`) has a title, categories and an
availability window. The categories follow the latent taste groups: group g's items are
in category `CATEGORY_NAMES[g % len]` (suffixed when there are more groups than names),
and a fifth of the items also carry a second, random category. Titles combine a word of
the group's vocabulary with words shared by every group, so titles carry some of the
group signal, as real titles do.

`new_item_fraction` of the items (drawn from the less popular half) launch in the last
`new_item_days` of the log and `withdrawn_fraction` are withdrawn in its last 30 days;
the log holds no event of an item outside its window (such draws go to a stand-in item
of the same group), so new items have few interactions. Half of the withdrawn items have
an `available_until`, the other half are marked `active = false` without a date.
Draws use their own seed stream (`spawn_key=(3,)`), so the log's other draws do not move.
"""

from __future__ import annotations

import filecmp
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_spark.config import SampleConfig

CATEGORY_NAMES = (
    "books", "music", "garden", "kitchen", "outdoor", "toys", "fashion", "tech",
    "sports", "beauty", "office", "pets",
)  # fmt: skip
_SHARED_WORDS = ("classic", "new", "deluxe", "mini", "pro", "basic", "smart", "eco")
_GROUP_WORDS = 6  # vocabulary words per group
_DAY_MS = 86_400_000
_WITHDRAW_DAYS = 30


@dataclass(frozen=True)
class Lifecycle:
    """Per item: first and last millisecond it may have events, and its stand-in."""

    launch_ms: np.ndarray  # int64; items without a launch have the log's start
    until_ms: np.ndarray  # int64; items never withdrawn have the log's end
    substitute: np.ndarray  # an always-available item of the same group (itself if so)
    new: np.ndarray  # bool
    withdrawn: np.ndarray  # bool


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(3,))))


def item_lifecycle(
    spec: SampleConfig, item_group: np.ndarray, pop_rank: np.ndarray, start_ms: int
) -> Lifecycle:
    """Which items launch late or are withdrawn, when, and which item stands in for them."""
    n, rng = spec.n_items, _rng(spec.seed)
    end_ms = start_ms + spec.days * _DAY_MS
    order = rng.permutation(n)
    tail = order[pop_rank[order] >= n // 2]  # the less popular half, in random order
    n_new = min(int(round(spec.new_item_fraction * n)), len(tail))
    new = np.zeros(n, bool)
    new[tail[:n_new]] = True
    rest = order[~new[order]]
    n_gone = min(int(round(spec.withdrawn_fraction * n)), len(rest))
    withdrawn = np.zeros(n, bool)
    withdrawn[rest[:n_gone]] = True
    launch = np.full(n, start_ms, np.int64)
    launch[new] = end_ms - rng.integers(1, spec.new_item_days * _DAY_MS, new.sum())
    until = np.full(n, end_ms, np.int64)
    window = min(_WITHDRAW_DAYS, spec.days) * _DAY_MS
    until[withdrawn] = end_ms - rng.integers(1, window, withdrawn.sum())
    steady = ~(new | withdrawn)
    substitute = np.arange(n)
    for g in np.unique(item_group):
        pool = np.flatnonzero(steady & (item_group == g))
        if len(pool) == 0:
            pool = np.flatnonzero(steady)
        moving = np.flatnonzero(~steady & (item_group == g))
        if len(pool) and len(moving):
            substitute[moving] = rng.choice(pool, len(moving))
    return Lifecycle(launch, until, substitute, new, withdrawn)


def catalog_frame(
    spec: SampleConfig, item_names: np.ndarray, item_group: np.ndarray, life: Lifecycle
) -> pd.DataFrame:
    """One row per item: item_id, title, categories ("a|b"), available_from,
    available_until (ISO dates, empty when open), active, price."""
    rng = _rng(spec.seed + 1)
    n = len(item_names)
    names = [
        CATEGORY_NAMES[g % len(CATEGORY_NAMES)] + ("" if g < len(CATEGORY_NAMES) else f"-{g}")
        for g in range(int(item_group.max()) + 1)
    ]
    own = np.array(names, dtype=object)[item_group]
    second = rng.random(n) < 0.2
    other = np.array(names, dtype=object)[rng.integers(0, len(names), n)]
    categories = np.where(second & (other != own), own + "|" + other, own)
    word = rng.integers(0, _GROUP_WORDS, n)
    shared = np.array(_SHARED_WORDS, dtype=object)[rng.integers(0, len(_SHARED_WORDS), n)]
    titles = [f"{shared[i]} {own[i]}-{word[i]} {item_names[i]}" for i in range(n)]

    def day(ms: np.ndarray, show: np.ndarray) -> np.ndarray:
        text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="D").astype(object)
        return np.where(show, text, "")

    dated = life.withdrawn & (np.arange(n) % 2 == 0)
    return pd.DataFrame(
        {
            "item_id": item_names,
            "title": titles,
            "categories": categories,
            "available_from": day(life.launch_ms, life.new),
            "available_until": day(life.until_ms, dated),
            "active": np.where(life.withdrawn & ~dated, "false", "true"),
            "price": np.round(rng.lognormal(3.0, 0.8, n), 2),
        }
    )


def write_catalog(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write the catalogue as CSV, replacing `path` atomically."""
    return write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_atomically(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write` on a temporary file beside `path`, then make it `path` (os.replace):
    readers see the old file or the whole new one, never a part. Parents are created.

    A file equal byte for byte to the one already at `path` is dropped and the old one
    kept with its modification time: the ingest, which takes a file with a new time as
    new, does not read the same rows again (the demo's next night finds nothing new).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        if path.is_file() and filecmp.cmp(tmp, path, shallow=False):
            Path(tmp).unlink()
            return path
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
