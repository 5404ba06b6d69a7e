"""End-to-end nightly in local mode at several log sizes: stage times, total, peak memory.

    python benchmarks/bench_nightly.py [--sizes 500000 2000000 8000000]

Each size gets a generated CSV log (users = events / 40, items = events / 100, capped at
40K items, as the other benchmarks), a fresh lake and its own process (a fresh JVM, so
peak memory is that night's alone). The night runs as `make nightly` does, with the
default config (local mode, `conf/local.yml`) except: tracking off (no SQLite writes in
the timings), and ALS tuning off (`nightly.tune_every_days=0`): the figure is a regular
night, not the weekly tuning night. Growth is judged on seconds per event between the
smallest and the largest size (target: at most 1.3x, no worse than linear). Each night's
log (every stage and sub-step with its duration) goes beside the JSON: nightly-<events>.log.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample_spec(events: int):  # type: ignore[no-untyped-def]
    from recsys_spark.config import SampleConfig

    return SampleConfig(
        n_events=events,
        n_users=max(events // 40, 100),
        n_items=min(max(events // 100, 50), 40_000),
        duplicate_fraction=0.01,
        bad_row_fraction=0.002,
    )


def run_night(source: Path, lake: Path, driver_memory: str, extra: list[str]) -> dict:
    """Child process: one nightly on `source`; the report as a dict (one JSON line)."""
    from benchmarks.memory import peak_rss
    from recsys_spark.config import load_config
    from recsys_spark.pipeline import night
    from recsys_spark.session import get_spark

    spec = sample_spec(1)
    run_date = date.fromisoformat(spec.start_date) + timedelta(days=spec.days - 1)
    cfg = load_config(
        ROOT / "conf" / "local.yml",
        [
            f"storage.root={lake}",
            f"ingest.source={source}",
            f"spark.driver_memory={driver_memory}",
            "tracking.enabled=false",
            "nightly.tune_every_days=0",
            *extra,
        ],
    )
    spark = get_spark(cfg.spark)
    with peak_rss(spark) as peak:
        start = time.perf_counter()
        report = night.run_night(spark, cfg, run_date)
        seconds = time.perf_counter() - start
    spark.stop()
    return {
        "seconds": round(seconds, 1),
        "stages": {k: round(v, 1) for k, v in report.durations.items()},
        "champion": report.champion,
        "published_users": report.published.users if report.published else 0,
        "gate": report.gate.reason,
        "peak_jvm_mib": round(peak.jvm / 2**20),
        "peak_python_mib": round(peak.python / 2**20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500_000, 2_000_000, 8_000_000])
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "nightly.json"))
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "LAKE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        source, lake = map(Path, args.child)
        print(json.dumps(run_night(source, lake, args.driver_memory, args.extra)))
        return 0

    from recsys_spark.data.sample import write_sample

    results: dict[str, dict] = {}
    for events in args.sizes:
        source = Path(args.data_dir) / f"nightly-{events}" / "events.csv"
        if not source.is_file():
            print(f"generating {events} events -> {source}", flush=True)
            write_sample(sample_spec(events), source, fmt="csv")
        lake = Path(tempfile.mkdtemp(prefix=f"bench-nightly-{events}-"))
        cmd = [sys.executable, __file__, "--child", str(source), str(lake)]
        cmd += ["--driver-memory", args.driver_memory]
        for item in args.extra:
            cmd += ["--set", item]
        log_path = Path(args.out).with_name(f"nightly-{events}.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"night of {events} events: log in {log_path}", flush=True)
        try:
            with log_path.open("w") as log_file:
                child = subprocess.run(
                    cmd, check=False, stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=ROOT
                )
        finally:
            shutil.rmtree(lake, ignore_errors=True)
        if child.returncode != 0:
            print(log_path.read_text()[-4000:], file=sys.stderr)
            return child.returncode
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["events"] = events
        result["us_per_event"] = round(result["seconds"] / events * 1e6, 2)
        results[str(events)] = result
        print(json.dumps(result), flush=True)

    sizes = sorted(results, key=int)
    if len(sizes) > 1:
        small, large = results[sizes[0]], results[sizes[-1]]
        growth = large["us_per_event"] / small["us_per_event"]
        print(
            f"seconds per event grows {growth:.2f}x from {sizes[0]} to {sizes[-1]} events "
            f"(target <= 1.3x): {'met' if growth <= 1.3 else 'MISSED'}"
        )
        results["growth_per_event"] = {"from": sizes[0], "to": sizes[-1], "ratio": round(growth, 2)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
