"""The nightly on the built-in sample: local mode beside the 2-worker standalone cluster.

    python benchmarks/bench_cluster.py [--run-date 2026-04-30] [--set KEY=VALUE ...]

Generates the built-in sample log once (`jobs/generate_sample.py`, default spec), then
runs the same nightly twice, each into a fresh lake with its own MLflow store:

- local:   `python jobs/nightly.py --conf conf/local.yml` (local[*] on this machine);
- cluster: `cluster/cluster.sh up`, then `cluster/cluster.sh submit jobs/nightly.py
           --conf conf/cluster.yml` (client mode, 2 workers x 1 core, the wheel shipped
           with --py-files), then `cluster/cluster.sh down`.

`--set` overrides go to both nights. Each time is the wall clock of the job's process,
JVM start included; starting and stopping the cluster are timed apart. Both nights must
publish (exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Run `cmd` in the project folder; its wall-clock seconds. Fails loudly on exit != 0."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd[:3])} ... exited {done.returncode}")
    return round(seconds, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-date", default="2026-04-30")
    parser.add_argument("--work", default=str(ROOT / "data" / "bench-cluster"))
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "cluster.json"))
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    sample = work / "sample" / "events.csv"
    timed([PY, "jobs/generate_sample.py", "--set", f"sample.path={sample}"])

    def night_args(mode: str) -> list[str]:
        lake = work / mode / "lake"
        return [
            "--run-date", args.run_date,
            "--set", f"storage.root=file://{lake}",
            "--set", f"ingest.source={sample}",
            "--set", f"tracking.uri=sqlite:///{work / mode / 'mlflow.db'}",
            *[arg for item in args.extra for arg in ("--set", item)],
        ]  # fmt: skip

    results: dict[str, object] = {"run_date": args.run_date, "overrides": args.extra}
    results["load_before"] = os.getloadavg()
    results["local_s"] = timed(
        [PY, "jobs/nightly.py", "--conf", "conf/local.yml", *night_args("local")]
    )
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    results["cluster_up_s"] = timed(["cluster/cluster.sh", "up"], env)
    try:
        results["cluster_s"] = timed(
            ["cluster/cluster.sh", "submit", "jobs/nightly.py", "--conf", "conf/cluster.yml",
             *night_args("cluster")],
            env,
        )  # fmt: skip
    finally:
        results["cluster_down_s"] = timed(["cluster/cluster.sh", "down"], env)
    results["load_after"] = os.getloadavg()
    results["cluster_over_local"] = round(results["cluster_s"] / results["local_s"], 2)  # type: ignore[operator]
    print(json.dumps(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
