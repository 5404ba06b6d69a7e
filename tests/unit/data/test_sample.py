"""Tests for the synthetic interaction-log generator (no Spark)."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys_spark.config import SampleConfig
from recsys_spark.data.sample import (
    BAD_EPOCH,
    BAD_EVENT_TYPE,
    BAD_TIMESTAMP,
    BLOCK_ROWS,
    COLUMNS,
    EVENT_TYPES,
    generate_chunks,
    latent_groups,
    write_sample,
)


def clean_spec(**fields: object) -> SampleConfig:
    """A sample config without duplicates or bad rows unless asked for."""
    return SampleConfig(**{"duplicate_fraction": 0.0, "bad_row_fraction": 0.0, **fields})


SMALL = clean_spec(n_events=5_000, n_users=300, n_items=200, seed=7)
MEDIUM = clean_spec(n_events=50_000, n_users=1_000, n_items=500, seed=11)


def frame(spec: SampleConfig, chunk_size: int = 1_000_000) -> pd.DataFrame:
    return pd.concat(list(generate_chunks(spec, chunk_size)), ignore_index=True)


def top_share(counts: pd.Series, frac: float = 0.1) -> float:
    ordered = counts.sort_values(ascending=False)
    return ordered.iloc[: max(1, int(len(ordered) * frac))].sum() / ordered.sum()


def bad_mask(df: pd.DataFrame) -> pd.Series:
    ts = df["timestamp"]
    bad_ts = ts.eq(BAD_TIMESTAMP) | (ts.eq(BAD_EPOCH) if ts.dtype != object else False)
    return df["user_id"].eq("") | bad_ts | ~df["event_type"].isin(EVENT_TYPES) | df["value"].lt(0)


@pytest.fixture(scope="module")
def medium() -> pd.DataFrame:
    return frame(MEDIUM)


# --- spec validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_events", 0),
        ("n_users", -1),
        ("n_items", 2.5),
        ("n_groups", 0),
        ("n_groups", 10_000),
        ("days", 0),
        ("seed", -3),
        ("popularity_exponent", -0.5),
        ("popularity_exponent", float("nan")),
        ("duplicate_fraction", 1.0),
        ("bad_row_fraction", -0.1),
        ("timestamp_format", "rfc2822"),
        ("start_date", "2026-13-01"),
        ("start_date", "1969-12-31"),
    ],
)
def test_spec_rejects_bad_field_naming_it(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field) as info:
        clean_spec(**{field: value})
    assert "\n" not in str(info.value)


def test_spec_rejects_fractions_summing_to_one() -> None:
    with pytest.raises(ValueError, match="duplicate_fraction"):
        SampleConfig(duplicate_fraction=0.6, bad_row_fraction=0.4)


def test_bad_chunk_size_and_format_rejected_without_creating_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        generate_chunks(SMALL, 0)
    with pytest.raises(ValueError, match="fmt"):
        write_sample(SMALL, tmp_path / "x" / "out.txt", fmt="xml")
    with pytest.raises(ValueError, match="chunk_size"):
        write_sample(SMALL, tmp_path / "y" / "out.csv", chunk_size=-1)
    assert list(tmp_path.iterdir()) == []


# --- determinism and shape ----------------------------------------------------------------


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a, b = frame(SMALL), frame(SMALL)
    pd.testing.assert_frame_equal(a, b)
    c = frame(dataclasses.replace(SMALL, seed=8))
    assert (a["user_id"] != c["user_id"]).mean() > 0.5


def test_rows_do_not_depend_on_chunk_size() -> None:
    spec = dataclasses.replace(
        SMALL, n_events=BLOCK_ROWS + 4_321, duplicate_fraction=0.02, bad_row_fraction=0.02
    )
    whole = frame(spec)
    for size in (1_000, 7_777, BLOCK_ROWS + 1):
        pd.testing.assert_frame_equal(frame(spec, size), whole)


@pytest.mark.parametrize("chunk_size", [1_000, 4_999, 5_000, 100_000])
def test_row_count_and_chunk_lengths(chunk_size: int) -> None:
    lengths = [len(c) for c in generate_chunks(SMALL, chunk_size)]
    assert sum(lengths) == SMALL.n_events
    assert all(n == chunk_size for n in lengths[:-1]) and 0 < lengths[-1] <= chunk_size


@pytest.mark.parametrize("fmt", ["iso", "epoch_s", "epoch_ms"])
def test_columns_and_dtypes(fmt: str) -> None:
    df = frame(dataclasses.replace(SMALL, timestamp_format=fmt))
    assert tuple(df.columns) == COLUMNS
    for col in ("user_id", "item_id", "event_type"):
        assert df[col].dtype == object and df[col].map(type).eq(str).all()
    assert df["value"].dtype == np.float64
    if fmt == "iso":
        assert df["timestamp"].map(type).eq(str).all()
    else:
        assert df["timestamp"].dtype == np.int64


def test_ids_have_prefix_and_width_from_counts() -> None:
    df = frame(SMALL)  # 300 users -> u000..u299, 200 items -> i000..i199
    assert df["user_id"].str.fullmatch(r"u\d{3}").all()
    assert df["item_id"].str.fullmatch(r"i\d{3}").all()
    assert df["user_id"].str[1:].astype(int).max() < 300
    assert df["item_id"].str[1:].astype(int).max() < 200
    wide = frame(dataclasses.replace(SMALL, n_users=12_345, n_events=2_000))
    assert wide["user_id"].str.fullmatch(r"u\d{5}").all()


def test_every_event_type_present_in_funnel_order(medium: pd.DataFrame) -> None:
    counts = medium["event_type"].value_counts()
    assert set(counts.index) == set(EVENT_TYPES)
    shares = [counts[e] / len(medium) for e in EVENT_TYPES]
    assert shares == sorted(shares, reverse=True)
    assert shares[0] > 0.5 and shares[3] > 0.01


def test_values_per_event_type(medium: pd.DataFrame) -> None:
    by = {e: medium.loc[medium["event_type"] == e, "value"] for e in EVENT_TYPES}
    assert by["click"].isna().all()
    assert (by["view"] > 0).all() and by["view"].median() > 5
    for e in ("add_to_cart", "purchase"):
        assert (by[e] >= 1).all() and (by[e] == by[e].round()).all()


def test_timestamps_within_range_and_sorted() -> None:
    spec = dataclasses.replace(SMALL, n_events=BLOCK_ROWS + 500, start_date="2025-11-15", days=30)
    ts = pd.to_datetime(frame(spec)["timestamp"], format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    start = datetime(2025, 11, 15, tzinfo=UTC)
    assert ts.min() >= start and ts.max() < start + timedelta(days=30)
    assert ts.max() - ts.min() > timedelta(days=29)  # spread over the whole range
    assert ts.is_monotonic_increasing


def test_timestamp_formats_agree() -> None:
    iso = frame(SMALL)["timestamp"]
    secs = frame(dataclasses.replace(SMALL, timestamp_format="epoch_s"))["timestamp"]
    ms = frame(dataclasses.replace(SMALL, timestamp_format="epoch_ms"))["timestamp"]
    parsed = pd.to_datetime(iso, format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    assert (parsed.astype("int64") // 10**9 == secs).all()
    assert (ms // 1000 == secs).all() and (ms % 1000 != 0).mean() > 0.9


# --- realism ------------------------------------------------------------------------------


def test_item_popularity_is_heavy_tailed(medium: pd.DataFrame) -> None:
    assert top_share(medium["item_id"].value_counts()) > 0.4
    flat = frame(dataclasses.replace(MEDIUM, popularity_exponent=0.0))
    assert top_share(flat["item_id"].value_counts()) < 0.25  # the exponent drives it


def test_user_activity_is_heavy_tailed(medium: pd.DataFrame) -> None:
    per_user = medium["user_id"].value_counts()
    assert top_share(per_user) > 0.35  # equal activity would give about 0.12
    assert per_user.max() > 10 * per_user.median()


def test_taste_groups_are_detectable(medium: pd.DataFrame) -> None:
    user_group, item_group = latent_groups(MEDIUM)
    users = medium["user_id"].str[1:].astype(int).to_numpy()
    items = medium["item_id"].str[1:].astype(int).to_numpy()
    own = (user_group[users] == item_group[items]).mean()
    assert own > 0.6  # chance is about 1 / n_groups
    x = np.zeros((MEDIUM.n_users, MEDIUM.n_items))
    x[users, items] = 1
    active = np.bincount(users, minlength=MEDIUM.n_users) >= 5
    x, g = x[active], user_group[active]
    inter = x @ x.T
    size = x.sum(axis=1)
    jaccard = inter / (size[:, None] + size[None, :] - inter)
    same = g[:, None] == g[None, :]
    off_diag = ~np.eye(len(g), dtype=bool)
    assert jaccard[same & off_diag].mean() > 2 * jaccard[~same].mean()


def lift_spread(pairs: pd.DataFrame) -> float:
    """Std of co-occurrence lift over item pairs, against a null keeping user degrees."""
    x = pd.crosstab(pairs["user_id"], pairs["item_id"]).clip(upper=1).to_numpy(float)
    co = x.T @ x
    np.fill_diagonal(co, 0)
    degree, share = x.sum(axis=1), x.sum(axis=0) / x.sum()
    expected = (degree * (degree - 1)).sum() * np.outer(share, share)
    supported = expected > 3
    return float((co[supported] / expected[supported]).std())


@pytest.mark.parametrize(("n_groups", "grouped"), [(8, True), (1, False)])
def test_item_cooccurrence_beats_shuffled_baseline(n_groups: int, grouped: bool) -> None:
    """Without labels: taste groups make item co-occurrence far from independent draws."""
    df = frame(dataclasses.replace(MEDIUM, n_groups=n_groups))
    pairs = df[["user_id", "item_id"]].drop_duplicates()
    rng = np.random.default_rng(0)
    shuffled = pairs.assign(item_id=rng.permutation(pairs["item_id"].to_numpy()))
    ratio = lift_spread(pairs) / lift_spread(shuffled)
    assert (ratio > 2.0) == grouped, ratio


def test_purchases_follow_a_view_of_the_same_item(medium: pd.DataFrame) -> None:
    df = medium.assign(ts=pd.to_datetime(medium["timestamp"], format="%Y-%m-%dT%H:%M:%SZ"))
    first_view = df[df["event_type"] == "view"].groupby(["user_id", "item_id"])["ts"].min()
    buys = df[df["event_type"] == "purchase"].join(
        first_view.rename("view_ts"), on=["user_id", "item_id"]
    )
    assert len(buys) > 100
    assert (buys["view_ts"] <= buys["ts"]).mean() > 0.95


# --- fault injection ----------------------------------------------------------------------


def test_no_faults_by_default(medium: pd.DataFrame) -> None:
    assert medium.duplicated().sum() == 0
    assert not bad_mask(medium).any()


def test_duplicate_fraction() -> None:
    df = frame(dataclasses.replace(MEDIUM, duplicate_fraction=0.1))
    assert len(df) == MEDIUM.n_events
    assert 0.09 < df.duplicated().mean() < 0.11


@pytest.mark.parametrize("fmt", ["iso", "epoch_ms"])
def test_bad_row_fraction_and_kinds(fmt: str) -> None:
    spec = dataclasses.replace(MEDIUM, bad_row_fraction=0.08, timestamp_format=fmt)
    df, clean = frame(spec), frame(dataclasses.replace(spec, bad_row_fraction=0.0))
    bad = bad_mask(df)
    assert len(df) == spec.n_events and 0.07 < bad.mean() < 0.09
    bad_ts = BAD_TIMESTAMP if fmt == "iso" else BAD_EPOCH
    kinds = [
        df["user_id"].eq(""),
        df["timestamp"].eq(bad_ts),
        df["event_type"].eq(BAD_EVENT_TYPE),
        df["value"].lt(0),
    ]
    assert all(k.mean() > 0.01 for k in kinds)
    pd.testing.assert_frame_equal(df[~bad], clean[~bad])  # faults touch only their rows
    assert (df[bad] != clean[bad]).any(axis=1).all()


def test_duplicates_and_bad_rows_together_are_deterministic() -> None:
    spec = dataclasses.replace(SMALL, duplicate_fraction=0.05, bad_row_fraction=0.05)
    pd.testing.assert_frame_equal(frame(spec, 999), frame(spec))
    assert frame(spec).duplicated().any() and bad_mask(frame(spec)).any()


# --- writers ------------------------------------------------------------------------------


def expected_text_stamps(df: pd.DataFrame) -> pd.Series:
    ts = df["timestamp"]
    return ts if ts.dtype == object else ts.astype(object).mask(ts == BAD_EPOCH, BAD_TIMESTAMP)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(
        path, dtype={c: str for c in COLUMNS[:4]}, keep_default_na=False, na_values={"value": [""]}
    )


@pytest.mark.parametrize("ts_fmt", ["iso", "epoch_s"])
@pytest.mark.parametrize("bad", [0.0, 0.05])
def test_csv_round_trip(tmp_path: Path, ts_fmt: str, bad: float) -> None:
    spec = dataclasses.replace(SMALL, timestamp_format=ts_fmt, bad_row_fraction=bad)
    path = write_sample(spec, tmp_path / "deep" / "log.csv", "csv", chunk_size=1_234)
    assert path == tmp_path / "deep" / "log.csv"
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS) and '"' not in text
    want = frame(spec)
    want["timestamp"] = expected_text_stamps(want).astype(str)
    pd.testing.assert_frame_equal(read_csv(path), want)


def test_csv_and_json_bytes_do_not_depend_on_chunk_size(tmp_path: Path) -> None:
    spec = dataclasses.replace(SMALL, duplicate_fraction=0.03, bad_row_fraction=0.03)
    for fmt in ("csv", "json"):
        a = write_sample(spec, tmp_path / f"a.{fmt}", fmt, chunk_size=777).read_bytes()
        b = write_sample(spec, tmp_path / f"b.{fmt}", fmt).read_bytes()
        assert a == b and len(a) > 100_000


@pytest.mark.parametrize("ts_fmt", ["iso", "epoch_ms"])
@pytest.mark.parametrize("bad", [0.0, 0.05])
def test_json_round_trip(tmp_path: Path, ts_fmt: str, bad: float) -> None:
    spec = dataclasses.replace(SMALL, timestamp_format=ts_fmt, bad_row_fraction=bad)
    path = write_sample(spec, tmp_path / "log.jsonl", "json", chunk_size=2_000)
    lines = path.read_text().splitlines()
    assert len(lines) == spec.n_events and list(json.loads(lines[0])) == list(COLUMNS)
    got = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    want = frame(spec)
    if bad:
        want["timestamp"] = expected_text_stamps(want)
        got["timestamp"] = got["timestamp"].astype(object)
    pd.testing.assert_frame_equal(got, want, check_dtype=not bad)


@pytest.mark.parametrize("ts_fmt", ["iso", "epoch_s"])
def test_parquet_round_trip(tmp_path: Path, ts_fmt: str) -> None:
    spec = dataclasses.replace(
        SMALL, timestamp_format=ts_fmt, bad_row_fraction=0.05, duplicate_fraction=0.05
    )
    path = write_sample(spec, tmp_path / "log.parquet", "parquet", chunk_size=2_000)
    meta = pq.ParquetFile(path)
    assert meta.metadata.num_row_groups == 3
    want_type = pa.string() if ts_fmt == "iso" else pa.int64()
    assert meta.schema_arrow.field("timestamp").type == want_type
    assert meta.schema_arrow.names == list(COLUMNS)
    pd.testing.assert_frame_equal(pq.read_table(path).to_pandas(), frame(spec))


def test_write_replaces_existing_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "log.csv"
    target.write_text("old content\n")
    write_sample(SMALL, target)
    assert target.read_text().startswith(",".join(COLUMNS))
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]  # no temp file left


def test_writing_the_same_sample_again_keeps_the_file_and_its_time(tmp_path: Path) -> None:
    target = write_sample(SMALL, tmp_path / "log.csv")
    os.utime(target, (1_000_000_000, 1_000_000_000))  # as if written long ago
    write_sample(SMALL, target)
    assert target.stat().st_mtime == 1_000_000_000  # the ingest finds nothing new
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]
    write_sample(dataclasses.replace(SMALL, seed=SMALL.seed + 1), target)  # other rows: replaced
    assert target.stat().st_mtime > 1_000_000_000


def test_catalogue_matches_the_log_new_items_start_late_withdrawn_ones_stop(tmp_path: Path) -> None:
    spec = clean_spec(
        n_events=30_000, n_users=500, n_items=300, seed=5, new_item_fraction=0.05,
        withdrawn_fraction=0.05, path=str(tmp_path / "events.csv"),
        catalog_path=str(tmp_path / "items.csv"),
    )  # fmt: skip
    from recsys_spark.data.sample import generate_sample

    generate_sample(spec)
    items = pd.read_csv(spec.catalog_path, dtype=str, keep_default_na=False)
    events = pd.read_csv(spec.path)
    assert len(items) == spec.n_items and items.item_id.is_unique
    _, item_group = latent_groups(spec)
    first_category = items.categories.str.split("|").str[0]
    # Each taste group is one category: the catalogue carries the log's structure.
    assert first_category.groupby(item_group).nunique().eq(1).all()
    ts = pd.to_datetime(events.timestamp)
    new = items[items.available_from != ""]
    assert len(new) == 15
    for row in new.itertuples():
        seen = ts[events.item_id == row.item_id]
        assert (seen >= pd.Timestamp(row.available_from, tz="UTC")).all()
    withdrawn = items[(items.available_until != "") | (items.active == "false")]
    assert len(withdrawn) == 15
    dated = items[items.available_until != ""]
    for row in dated.itertuples():
        until = pd.Timestamp(row.available_until, tz="UTC") + pd.Timedelta(days=1)
        assert (ts[events.item_id == row.item_id] < until).all()
    counts = events.item_id.value_counts()
    assert counts.reindex(new.item_id).fillna(0).mean() < counts.mean() / 5


def test_no_new_or_withdrawn_items_leave_the_log_as_it_was() -> None:
    plain = frame(dataclasses.replace(SMALL, new_item_fraction=0.0, withdrawn_fraction=0.0))
    assert len(plain) == SMALL.n_events
    with_life = frame(SMALL)
    # The lifecycle re-points some draws to stand-ins; the rest of the log is the same.
    assert (plain.timestamp == with_life.timestamp).all()
    assert (plain.item_id != with_life.item_id).mean() < 0.05
