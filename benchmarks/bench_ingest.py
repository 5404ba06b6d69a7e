"""Ingest benchmark: the full ingest job vs a plain CSV -> Delta write of the same file.

    python benchmarks/bench_ingest.py [--events 5000000] [--repeat 1] [--out bench-results/x.json]
    python benchmarks/bench_ingest.py --backfill    # 100,000 events over 1996-2018

Generates (once, cached) a synthetic CSV log with the sample generator (120 days of events
by default; `--backfill`: 100,000 events spread over the 22 years 1996-2018, a long
history loaded at once), then runs each variant in its own fresh local[2] Spark process
so that memory figures are not mixed:

- plain:  spark.read.csv(header=True).write.format("delta") -- no validation at all (its
          rows are counted after the clock stops: the baseline is the write alone);
- ingest: recsys_spark.ingest.runner.run_ingest into an empty storage root -- parse, validate,
          quarantine, deduplicate, index maintenance, the interactions write (into an
          empty table: a plain insert; later batches append the new keys only), ingest
          logs, reconciliation.

Each child warms its JVM on a tiny file first, then times its variant. Targets: ingest
costs at most 3x the plain write, and the backfill's interactions table has at most 50
data files. The ingest's stage times (from its log), the JVM's
CPU seconds (and how many of them went to JIT compiling and garbage collection) and the
host's load average go into the JSON too. With `--repeat N` the two variants alternate
N times and the fastest run of each is compared: on a shared host the least disturbed
one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 3.0
TARGET_BACKFILL_FILES = 50
BACKFILL = {"events": 100_000, "start_date": "1996-01-01", "days": 8401}


def _spark(driver_memory: str):  # type: ignore[no-untyped-def]
    from recsys_spark.config import SparkConfig
    from recsys_spark.session import get_spark

    return get_spark(SparkConfig(app_name="bench-ingest", driver_memory=driver_memory))


def plain_write(spark, source: Path, path: str) -> None:  # type: ignore[no-untyped-def]
    """The baseline: the CSV log read as it is and written to Delta, no checks at all."""
    frame = spark.read.option("header", True).csv(str(source))
    frame.write.format("delta").mode("overwrite").save(path)


def run_variant(variant: str, source: Path, work: Path, driver_memory: str) -> dict:
    """Time one variant in this process; returns its figures."""
    from benchmarks.memory import jvm_jit_and_gc_seconds, jvm_pid, peak_rss
    from recsys_spark.config import IngestConfig, StorageConfig
    from recsys_spark.ingest.runner import run_ingest

    spark = _spark(driver_memory)
    warm = work / "warm.csv"
    warm.write_text(
        "user_id,item_id,event_type,timestamp,value\nu1,i1,view,2026-01-05T10:00:00Z,1\n"
    )
    if variant == "plain":
        plain_write(spark, warm, str(work / "warm_plain"))
    else:
        run_ingest(
            spark, IngestConfig(source=str(warm)), StorageConfig(root=str(work / "warm_lake"))
        )
    jvm = jvm_pid(spark)
    cpu_before, load_before = _cpu_seconds(jvm), os.getloadavg()[0]
    jit_before, gc_before = jvm_jit_and_gc_seconds(spark)
    with peak_rss(spark) as peak:
        start = time.perf_counter()
        if variant == "plain":
            plain_write(spark, source, str(work / "plain"))
            rows = 0  # counted below, after the clock: the baseline is the write alone
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
    cpu = _cpu_seconds(jvm) - cpu_before
    jit_after, gc_after = jvm_jit_and_gc_seconds(spark)
    table = str(work / ("plain" if variant == "plain" else "lake/interactions"))
    if variant == "plain":
        rows = spark.read.format("delta").load(table).count()
    files = spark.sql(f"DESCRIBE DETAIL delta.`{table}`").first()["numFiles"]
    spark.stop()
    return {
        "variant": variant,
        "seconds": round(seconds, 2),
        "rows": rows,
        "rows_per_s": round(rows / seconds),
        "data_files": files,
        "peak_jvm_mib": round(peak.jvm / 2**20),
        "peak_python_mib": round(peak.python / 2**20),
        "jvm_cpu_s": round(cpu, 1),
        "jvm_jit_s": round(jit_after - jit_before, 1),
        "jvm_gc_s": round(gc_after - gc_before, 1),
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        **extra,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid`: less sensitive than wall time to a busy host."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_source(events: int, path: Path, **span: object) -> Path:
    """The benchmark's CSV log, generated once and reused by later runs; `span` sets the
    sample's `start_date` and `days`."""
    if path.is_file():
        return path
    from recsys_spark.config import SampleConfig
    from recsys_spark.data.sample import write_sample

    spec = SampleConfig(
        **span,
        n_events=events,
        n_users=max(events // 40, 100),
        n_items=max(events // 100, 50),
        duplicate_fraction=0.01,
        bad_row_fraction=0.002,
    )
    print(f"generating {events} events -> {path}", flush=True)
    return write_sample(spec, path, fmt="csv")


_STAGE_DONE = re.compile(r"INFO recsys_spark\.\S+: (.+): done in ([0-9.]+) s$")


def _stage_times(log: str) -> dict[str, float]:
    """Seconds per logged ingest stage of the timed run (the last one in the child's log)."""
    runs: list[dict[str, float]] = []
    for line in log.splitlines():
        match = _STAGE_DONE.search(line)
        if not match:
            continue
        name, seconds = match.group(1), float(match.group(2))
        if name == "list source files":
            runs.append({})
        if runs:
            runs[-1][re.sub(r"\d+", "N", name)] = seconds
    return runs[-1] if runs else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="100,000 events over 1996-2018 (a long history at once); out ingest_backfill.json",
    )
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument(
        "--repeat", type=int, default=1, help="alternate plain/ingest N times; keep the best"
    )
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--out", help="default bench-results/ingest[_backfill].json")
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

    span = {k: v for k, v in BACKFILL.items() if k != "events"} if args.backfill else {}
    events = BACKFILL["events"] if args.backfill else args.events
    name = f"backfill-{events}.csv" if args.backfill else f"events-{events}.csv"
    source = ensure_source(events, Path(args.data_dir) / name, **span)
    runs: dict[str, list[dict]] = {"plain": [], "ingest": []}
    for _ in range(args.repeat):  # alternate the variants, so both see the same host load
        for variant in ("plain", "ingest"):
            result = _run_child(variant, source, args.driver_memory)
            runs[variant].append(result)
            print(json.dumps(result), flush=True)

    # On a shared host the fastest run of each variant is the least disturbed one.
    best = {v: min(r, key=lambda x: x["seconds"]) for v, r in runs.items()}
    ratio = best["ingest"]["seconds"] / best["plain"]["seconds"]
    files_met = not args.backfill or best["ingest"]["data_files"] <= TARGET_BACKFILL_FILES
    summary = {
        "benchmark": "ingest_backfill" if args.backfill else "ingest",
        "events": events,
        "span": span or None,
        "source_bytes": source.stat().st_size,
        "plain": best["plain"],
        "ingest": best["ingest"],
        "ratio": round(ratio, 2),
        "cpu_ratio": round(best["ingest"]["jvm_cpu_s"] / best["plain"]["jvm_cpu_s"], 2),
        "target_ratio": TARGET_RATIO,
        "target_files": TARGET_BACKFILL_FILES if args.backfill else None,
        "target_met": ratio <= TARGET_RATIO and files_met,
        "runs": runs,
    }
    default_out = "ingest_backfill.json" if args.backfill else "ingest.json"
    out = Path(args.out or ROOT / "bench-results" / default_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"ingest {best['ingest']['seconds']} s vs plain write {best['plain']['seconds']} s "
        f"(best of {args.repeat}): ratio {ratio:.2f} (target <= {TARGET_RATIO}), JVM CPU "
        f"ratio {summary['cpu_ratio']:.2f}; interactions data files {best['ingest']['data_files']} "
        f"(plain write {best['plain']['data_files']}) -> {out}"
    )
    return 0


def _run_child(variant: str, source: Path, driver_memory: str) -> dict:
    """Run one variant in a fresh Python + JVM; its figures and logged stage times."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-ingest-{variant}-"))
    command = [sys.executable, __file__, "--variant", variant, "--source", str(source)]
    command += ["--work", str(work), "--driver-memory", driver_memory]
    try:
        child = subprocess.run(command, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        print(exc.stderr[-4000:], file=sys.stderr)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result: dict = json.loads(child.stdout.strip().splitlines()[-1])
    result["stages_s"] = _stage_times(child.stderr)
    return result


if __name__ == "__main__":
    sys.exit(main())
