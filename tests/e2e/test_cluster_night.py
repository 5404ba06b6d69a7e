"""The nightly on a 2-worker standalone cluster, end to end (cluster/ci.sh).

Starts a master and two workers on 127.0.0.1, submits jobs/nightly.py with the project
wheel on a fresh tiny sample, checks the published tables and stops the cluster. The
sample and the models are kept tiny: the point is the distributed path (the wheel on the
executors, Delta and the lock through a cluster), not the models.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster  # two more JVMs for minutes: `make test-fast` skips it

PROJECT = Path(__file__).resolve().parents[2]
TINY = [
    "spark.codegen=false",  # a tiny night, as make demo runs it
    "sample.n_events=4000",
    "sample.n_users=300",
    "sample.n_items=150",
    "als.rank=8",
    "als.max_iter=5",
    "nightly.tune_every_days=0",
    "maintenance.every_days=0",
    "similarity.measures=[jaccard]",
    "evaluation.diversity_max_users=50",
    # EASE and the learned ranker make the ranker the champion, whose final fit refits
    # every model: a quarter of a tiny night (215 -> 160 s locally). Their night path is
    # covered by tests/e2e/test_nightly.py and the full sample night of make bench-cluster.
    "ease.enabled=false",
    "ranker.enabled=false",
]


def _wheel() -> None:
    """The wheel cluster/cluster.sh ships with --py-files, built from this checkout."""
    for old in (PROJECT / "dist").glob("recsys_spark-*"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", ".", "-w", "dist/"],
        cwd=PROJECT,
        check=True,
    )


def test_nightly_on_a_standalone_cluster_publishes_its_lists() -> None:
    _wheel()
    env = {
        **os.environ,
        "VENV": str(Path(sys.executable).parents[1]),
        "SET": " ".join(f"--set {item}" for item in TINY),
    }
    done = subprocess.run(
        ["bash", "cluster/ci.sh"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
    assert done.returncode == 0, tail
    assert "published what 'nightly' expects" in done.stdout, tail
