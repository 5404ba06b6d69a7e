"""Peak resident memory of this process and its Spark JVM, sampled while a block runs."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
