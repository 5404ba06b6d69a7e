"""Ingest benchmark: the full ingest job vs a plain CSV -> Delta write of the same file.

    python benchmarks/bench_ingest.py [--events 5000000] [--out bench-results/ingest.json]

Generates (once, cached) a synthetic CSV log with the sample generator, then runs each
variant in its own fresh local[2] Spark process so that memory figures are not mixed:

- plain:  spark.read.csv(header=True).write.format("delta") -- no validation at all;
- ingest: jobs/ingest.py's run_ingest into an empty storage root -- parse, validate,
          quarantine, deduplicate, index maintenance, MERGE, ingest logs, reconciliation.

Each child warms its JVM on a tiny file first, then times its variant. Target: ingest
costs at most 2.5x the plain write.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 2.5


def _spark(driver_memory: str):  # type: ignore[no-untyped-def]
    from recsys_spark.config import SparkConfig
    from recsys_spark.session import get_spark

    return get_spark(SparkConfig(app_name="bench-ingest", driver_memory=driver_memory))


def run_variant(variant: str, source: Path, work: Path, driver_memory: str) -> dict:
    """Time one variant in this process; returns its figures."""
    from benchmarks.memory import peak_rss
    from recsys_spark.config import IngestConfig, StorageConfig
    from recsys_spark.ingest.runner import run_ingest

    spark = _spark(driver_memory)
    warm = work / "warm.csv"
    warm.write_text(
        "user_id,item_id,event_type,timestamp,value\nu1,i1,view,2026-01-05T10:00:00Z,1\n"
    )
    plain_write = lambda src, dst: (  # noqa: E731
        spark.read.option("header", True)
        .csv(str(src))
        .write.format("delta")
        .mode("overwrite")
        .save(dst)
    )
    if variant == "plain":
        plain_write(warm, str(work / "warm_plain"))
    else:
        run_ingest(
            spark, IngestConfig(source=str(warm)), StorageConfig(root=str(work / "warm_lake"))
        )
    with peak_rss(spark) as peak:
        start = time.perf_counter()
        if variant == "plain":
            plain_write(source, str(work / "plain"))
            rows = spark.read.format("delta").load(str(work / "plain")).count()
            extra: dict = {}
        else:
            report = run_ingest(
                spark, IngestConfig(source=str(source)), StorageConfig(root=str(work / "lake"))
            )
            rows = report.rows_read
            extra = {
                "rows_inserted": report.rows_inserted,
                "duplicates_in_batch": report.duplicates_in_batch,
                "rows_quarantined": report.rows_quarantined,
                "new_users": report.new_users,
                "new_items": report.new_items,
                "reconciled": report.reconciled,
            }
        seconds = time.perf_counter() - start
    spark.stop()
    return {
        "variant": variant,
        "seconds": round(seconds, 2),
        "rows": rows,
        "rows_per_s": round(rows / seconds),
        "peak_jvm_mib": round(peak.jvm / 2**20),
        "peak_python_mib": round(peak.python / 2**20),
        **extra,
    }


def ensure_source(events: int, path: Path) -> Path:
    """The benchmark's CSV log, generated once and reused by later runs."""
    if path.is_file():
        return path
    from recsys_spark.sample import SampleSpec, write_sample

    spec = SampleSpec(
        n_events=events,
        n_users=max(events // 40, 100),
        n_items=max(events // 100, 50),
        duplicate_fraction=0.01,
        bad_row_fraction=0.002,
    )
    print(f"generating {events} events -> {path}", flush=True)
    return write_sample(spec, path, fmt="csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "ingest.json"))
    parser.add_argument("--variant", choices=("plain", "ingest"), help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.variant:  # child process: one variant, figures as one JSON line on stdout
        print(
            json.dumps(
                run_variant(args.variant, Path(args.source), Path(args.work), args.driver_memory)
            )
        )
        return 0

    source = ensure_source(args.events, Path(args.data_dir) / f"events-{args.events}.csv")
    results = {}
    for variant in ("plain", "ingest"):
        work = Path(tempfile.mkdtemp(prefix=f"bench-ingest-{variant}-"))
        try:
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--variant",
                    variant,
                    "--source",
                    str(source),
                    "--work",
                    str(work),
                    "--driver-memory",
                    args.driver_memory,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as exc:
            print(exc.stderr[-4000:], file=sys.stderr)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results[variant] = json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps(results[variant]), flush=True)

    ratio = results["ingest"]["seconds"] / results["plain"]["seconds"]
    summary = {
        "benchmark": "ingest",
        "events": args.events,
        "source_bytes": source.stat().st_size,
        "plain": results["plain"],
        "ingest": results["ingest"],
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"ingest {results['ingest']['seconds']} s vs plain write {results['plain']['seconds']} s: "
        f"ratio {ratio:.2f} (target <= {TARGET_RATIO}) -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
