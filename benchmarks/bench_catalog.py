"""What the catalogue costs a night, and what content neighbours do for new items.

    python benchmarks/bench_catalog.py [--events 2000000]

One generated log with its catalogue (`sample.catalog_path`: new items launched in the
last 21 days, withdrawn ones) and generated exclusions (one popular unseen item for a
tenth of the users), three nights on the same events, each in its own process:

- `plain`: no catalogue (no rules, no content neighbours): the baseline;
- `rules`: the catalogue and exclusions ingested, availability, exclusions and
  `rules.max_per_category=3` applied to every list; content neighbours off;
- `content`: the same with content neighbours for new items.

The cost is the night's wall time against `plain` (target: rules and content together at
most 1.10x). The cold-item protocol reads each night's report: test items with fewer than
`catalog.cold_min_interactions` training users, their recall at 10 and their share of
the top-10 slots, per model, `rules` (before) against `content` (after). EASE and the
learned ranker are off in all three nights (they cost the same with or without a
catalogue, and would double the run time); ALS tuning off as in bench_nightly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_nightly import run_night, sample_spec  # noqa: E402

COMMON = ["ease.enabled=false", "ranker.enabled=false"]
NIGHTS = {
    "plain": [],
    "rules": ["rules.max_per_category=3", "catalog.content_neighbours=false"],
    "content": ["rules.max_per_category=3", "catalog.content_neighbours=true"],
}


def exclusions(events: Path, out: Path, seed: int = 3) -> Path:
    """One popular item each for a tenth of the users, among those they have not seen."""
    log = pd.read_csv(events, usecols=["user_id", "item_id"]).dropna()
    top = log.item_id.value_counts().index[:50].tolist()
    seen = set(zip(log.user_id, log.item_id, strict=True))
    users = np.random.default_rng(seed).permutation(sorted(log.user_id.unique()))
    rows = []
    for user in users[: len(users) // 10]:
        item = next((i for i in top if (user, i) not in seen), None)
        if item is not None:
            rows.append((user, item, ""))
    pd.DataFrame(rows, columns=["user_id", "item_id", "until"]).to_csv(out, index=False)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "catalog.json"))
    parser.add_argument("--nights", nargs="+", default=list(NIGHTS), choices=list(NIGHTS))
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "LAKE"), help=argparse.SUPPRESS)
    parser.add_argument("--set", dest="extra", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        source, lake = map(Path, args.child)
        print(json.dumps(run_night(source, lake, args.driver_memory, args.extra)))
        return 0

    from dataclasses import replace

    from recsys_spark.data.sample import write_sample, write_sample_catalog

    folder = Path(args.data_dir) / f"catalog-{args.events}"
    source, items, excluded = (folder / n for n in ("events.csv", "items.csv", "excl.csv"))
    spec = replace(sample_spec(args.events), catalog_path=str(items))
    if not source.is_file():
        print(f"generating {args.events} events and their catalogue -> {folder}", flush=True)
        write_sample(spec, source, fmt="csv")
        write_sample_catalog(spec)
    if not excluded.is_file():
        exclusions(source, excluded)
    run_date = date.fromisoformat(spec.start_date) + timedelta(days=spec.days - 1)
    results: dict[str, dict] = {}
    for name in args.nights:
        catalogue = [] if name == "plain" else [
            f"catalog.items.source={items}", f"catalog.exclusions.source={excluded}"
        ]  # fmt: skip
        lake = Path(tempfile.mkdtemp(prefix=f"bench-catalog-{name}-"))
        cmd = [sys.executable, __file__, "--child", str(source), str(lake)]
        cmd += ["--driver-memory", args.driver_memory]
        for item in [*COMMON, *catalogue, *NIGHTS[name]]:
            cmd += ["--set", item]
        log_path = Path(args.out).with_name(f"catalog-{name}.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"night '{name}': log in {log_path}", flush=True)
        try:
            with log_path.open("w") as log_file:
                child = subprocess.run(
                    cmd, check=False, stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=ROOT
                )
            if child.returncode != 0:
                print(log_path.read_text()[-4000:], file=sys.stderr)
                return child.returncode
            result = json.loads(child.stdout.strip().splitlines()[-1])
            report = lake / "reports" / "nightly" / str(run_date) / "metrics.json"
            doc = json.loads(report.read_text())
            result["cold_items"] = doc.get("cold_items")
            result["ndcg_at_10"] = {m: v.get("ndcg_at_10") for m, v in doc["models"].items()}
            result["removed"] = doc.get("rules", {}).get("removed")
        finally:
            shutil.rmtree(lake, ignore_errors=True)
        results[name] = result
        print(json.dumps({k: v for k, v in result.items() if k != "cold_items"}), flush=True)

    if "plain" in results:
        base = results["plain"]["seconds"]
        for name, result in results.items():
            result["vs_plain"] = round(result["seconds"] / base, 3)
            print(f"{name}: {result['seconds']} s, {result['vs_plain']}x the plain night")
        if "content" in results:
            ratio = results["content"]["vs_plain"]
            print(f"rules + content neighbours: {ratio}x (target <= 1.10x): "
                  f"{'met' if ratio <= 1.10 else 'MISSED'}")  # fmt: skip
    for name in ("rules", "content"):
        cold = (results.get(name) or {}).get("cold_items") or {}
        for model, values in cold.get("models", {}).items():
            print(f"{name:8s} {model:14s} cold recall@10 {values['cold_recall_at_10']:.4f} "
                  f"exposure@10 {values['cold_exposure_at_10']:.4f}")  # fmt: skip
    out = Path(args.out)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
