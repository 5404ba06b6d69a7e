"""Where the ingest's time goes: each piece of it alone, against the plain write.

    python benchmarks/ingest_floors.py [--events 5000000] [--repeat 3] [--out bench-results/x.json]

`bench_ingest.py` times the whole job against a plain CSV -> Delta write. This script
times the pieces the job cannot do without, each on its own, in one warm local[2] JVM
(every piece runs once before the timed rounds; the best of `--repeat` rounds is kept):

- plain_write:  spark.read.csv(header=True).write.format("delta") (the baseline);
- plain_read:   the same read into Spark's `noop` sink: parsing the CSV alone;
- validate:     the ingest's reader and validation (typed fields, reasons, event key)
                into the `noop` sink;
- cache:        the same, persisted and counted per file as the job does;
- write_flat:   from that cache, the valid rows as interactions rows (index columns
                made by hashing the ids: no join) in an unpartitioned Delta write, with
                the job's write settings;
- write:        the same, partitioned by date as the interactions table is;
- write_joined: the same with the ids joined to cached index frames, as the job does;
- ingest:       the whole job (`run_ingest`) into an empty storage root.

A piece's time is a floor for the job only as far as the job needs that piece; the
script shows how far those floors alone already are from the target ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_ingest import TARGET_RATIO, ensure_source, plain_write  # noqa: E402

PIECES = (
    "plain_write", "plain_read", "validate", "cache",
    "write_flat", "write", "write_joined", "ingest",
)  # fmt: skip


def pieces(spark, source: Path, work: Path) -> dict[str, Callable[[], object]]:  # type: ignore[no-untyped-def]
    """The pieces to time, by name; a piece that writes writes to `work / name`."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from recsys_spark import columns as C
    from recsys_spark.config import IngestConfig, StorageConfig
    from recsys_spark.ingest import schemas
    from recsys_spark.ingest.read import CACHE_SETTINGS, validated_rows, validated_with_counts
    from recsys_spark.ingest.runner import run_ingest
    from recsys_spark.ingest.write import WRITE_SETTINGS
    from recsys_spark.io import delta
    from recsys_spark.io.files import list_source_files

    cfg = IngestConfig(source=str(source))
    files = list_source_files(spark, cfg.source).files
    now = datetime.now(UTC).replace(microsecond=0)
    # The write pieces read the valid rows, cached as the job caches its batch. Spark
    # shares a cache entry between equal plans: this one must not equal the plan that the
    # `cache` piece persists and drops, nor appear inside the `validate` piece's plan.
    with delta.session_conf(spark, CACHE_SETTINGS):
        valid = validated_rows(spark, cfg, files, now).filter(F.col(C.REASON).isNull())
        valid = valid.persist(StorageLevel.MEMORY_AND_DISK)
        valid.count()
    users, items = (
        valid.select(key).distinct().withColumn(idx, F.hash(key)).cache()
        for key, idx in ((C.USER_ID, C.USER_IDX), (C.ITEM_ID, C.ITEM_IDX))
    )
    users.count(), items.count()
    columns = schemas.INTERACTIONS.fieldNames()[:-2]
    stamps = (F.lit("floors").alias(C.BATCH_ID), F.lit(now).alias(C.INGESTED_AT))

    def csv():  # type: ignore[no-untyped-def]
        return spark.read.option("header", True).csv(str(source))

    def noop(frame) -> None:  # type: ignore[no-untyped-def]
        frame.write.format("noop").mode("overwrite").save()

    def cache() -> None:
        validated_with_counts(spark, cfg, files, now)[0].unpersist(blocking=True)

    def write(frame, name: str, by: tuple[str, ...] = (C.EVENT_DATE,)) -> None:  # type: ignore[no-untyped-def]
        with delta.session_conf(spark, WRITE_SETTINGS):
            delta.append(frame.select(*columns, *stamps), str(work / name), by)

    hashed = valid.withColumn(C.USER_IDX, F.hash(C.USER_ID)).withColumn(
        C.ITEM_IDX, F.hash(C.ITEM_ID)
    )
    joined = valid.join(users, C.USER_ID).join(items, C.ITEM_ID)
    return {
        "plain_write": lambda: plain_write(spark, source, str(work / "plain_write")),
        "plain_read": lambda: noop(csv()),
        "validate": lambda: noop(validated_rows(spark, cfg, files, now)),
        "cache": cache,
        "write_flat": lambda: write(hashed, "write_flat", ()),
        "write": lambda: write(hashed, "write"),
        "write_joined": lambda: write(joined, "write_joined"),
        "ingest": lambda: run_ingest(spark, cfg, StorageConfig(root=str(work / "ingest"))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the best is kept")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "ingest_floors.json"))
    args = parser.parse_args(argv)

    from recsys_spark.config import SparkConfig
    from recsys_spark.session import get_spark

    source = ensure_source(args.events, Path(args.data_dir) / f"events-{args.events}.csv")
    spark = get_spark(SparkConfig(app_name="ingest-floors", driver_memory=args.driver_memory))
    work = Path(tempfile.mkdtemp(prefix="ingest-floors-"))
    timed = pieces(spark, source, work)
    seconds: dict[str, list[float]] = {name: [] for name in PIECES}
    for round_ in range(args.repeat + 1):  # round 0 warms the JVM up and is not kept
        for name in PIECES:
            start = time.perf_counter()
            timed[name]()
            elapsed = time.perf_counter() - start
            shutil.rmtree(work / name, ignore_errors=True)  # the next round starts empty
            if round_:
                seconds[name].append(round(elapsed, 2))
                print(f"round {round_}: {name} {seconds[name][-1]} s", flush=True)
    spark.stop()
    shutil.rmtree(work, ignore_errors=True)

    best = {name: min(runs) for name, runs in seconds.items()}
    summary = {
        "benchmark": "ingest_floors",
        "events": args.events,
        "best_s": best,
        "ratio_to_plain_write": {n: round(s / best["plain_write"], 2) for n, s in best.items()},
        "target_ratio": TARGET_RATIO,
        "runs_s": seconds,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    for name in PIECES:
        ratio = summary["ratio_to_plain_write"][name]
        print(f"{name:13} {best[name]:7.2f} s  {ratio:5.2f}x the plain write")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
