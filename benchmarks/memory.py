"""Peak resident memory, sampled from /proc (Linux) while a block runs.

`peak_rss` follows this process and its Spark JVM; `peak_tree_rss` follows this process
and all its descendants (the JVM, PySpark's Python workers, child jobs).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Peak:
    """Largest RSS seen, in bytes, for the JVM and for the Python driver."""

    jvm: int = 0
    python: int = 0

    @property
    def total_mib(self) -> float:
        return (self.jvm + self.python) / 2**20


@dataclass
class TreePeak:
    """Largest RSS seen, in bytes: this process with its descendants, the descendants
    alone (a Spark JVM and its Python workers), and the largest single Python worker."""

    tree: int = 0
    descendants: int = 0
    python_worker: int = 0


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, through /proc/<pid>/task/<tid>/children."""
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
            children = [int(c) for t in tasks for c in (t / "children").read_text().split()]
        except OSError:  # the process ended between two reads
            continue
        found += children
        stack += children
    return found


def _is_python_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="ignore")
    except OSError:
        return False
    return "pyspark.worker" in cmdline or "pyspark.daemon" in cmdline


@contextmanager
def peak_tree_rss(interval_s: float = 0.2) -> Iterator[TreePeak]:
    """Sample the process tree's RSS every `interval_s`; the result fills in on exit."""
    peak, stop, me = TreePeak(), threading.Event(), os.getpid()

    def sample() -> None:
        while not stop.is_set():
            children = {pid: _rss_bytes(pid) for pid in descendants(me)}
            workers = [rss for pid, rss in children.items() if _is_python_worker(pid)]
            peak.descendants = max(peak.descendants, sum(children.values()))
            peak.tree = max(peak.tree, _rss_bytes(me) + sum(children.values()))
            peak.python_worker = max(peak.python_worker, max(workers, default=0))
            stop.wait(interval_s)

    with _sampling(sample, stop):
        yield peak


@contextmanager
def _sampling(sample: Callable[[], None], stop: threading.Event) -> Iterator[None]:
    """Run `sample` on a daemon thread while the block runs; `stop` ends it."""
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def jvm_jit_and_gc_seconds(spark: SparkSession) -> tuple[float, float]:
    """Seconds the JVM has spent compiling (JIT) and collecting garbage since it started.

    As the management beans report them: time summed over the compiler (or collector)
    threads, elapsed rather than CPU time, so on a busy host it includes waits for a core.
    Both run beside the tasks and take cores from them.
    """
    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory  # type: ignore[union-attr]
    gc_ms = sum(bean.getCollectionTime() for bean in beans.getGarbageCollectorMXBeans())
    return beans.getCompilationMXBean().getTotalCompilationTime() / 1000, gc_ms / 1000


def jvm_pid(spark: SparkSession) -> int:
    return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # type: ignore[union-attr]


@contextmanager
def peak_rss(spark: SparkSession, interval_s: float = 0.2) -> Iterator[Peak]:
    """Sample RSS every `interval_s` while the block runs; the result fills in on exit."""
    peak, stop = Peak(), threading.Event()
    pids = (jvm_pid(spark), os.getpid())

    def sample() -> None:
        while not stop.is_set():
            peak.jvm = max(peak.jvm, _rss_bytes(pids[0]))
            peak.python = max(peak.python, _rss_bytes(pids[1]))
            stop.wait(interval_s)

    with _sampling(sample, stop):
        yield peak
