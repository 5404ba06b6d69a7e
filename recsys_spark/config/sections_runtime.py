"""Config sections of the runtime: storage root, Spark session, MLflow tracking."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from recsys_spark.errors import ConfigError


@dataclass(frozen=True)
class StorageConfig:
    """Where every table lives: all locations derive from `root` (a folder or a URI)."""

    root: str = "data/lake"

    @property
    def root_uri(self) -> str:
        """The root as a URI; a plain local path is made absolute (relative to the cwd)."""
        if "://" in self.root or self.root.startswith(("file:", "dbfs:")):
            return self.root.rstrip("/")
        return Path(self.root).resolve().as_uri()

    def table(self, name: str) -> str:
        """Location of the Delta table `name` under the storage root."""
        return f"{self.root_uri}/{name}"


@dataclass(frozen=True)
class SparkConfig:
    """SparkSession settings; `master`, `driver_memory` and `java_options` apply outside
    spark-submit only (its command line starts the JVM)."""

    app_name: str = "recsys-spark"
    master: str = "local[2]"
    driver_memory: str = "4g"
    # The JVM of a local run: the throughput collector, not G1 (on two cores a 2M-event
    # night 10% faster, 12% less CPU; BENCHMARKS.md, bench-nightly).
    java_options: str = "-XX:+UseParallelGC"
    shuffle_partitions: int = 4
    # Spark's Java code generation for each query. Off suits small local runs: a night of
    # a few thousand users runs ~1,500 tiny queries, and compiling each costs more than it
    # saves (BENCHMARKS.md, bench-nightly).
    codegen: bool = True
    log_level: str = "WARN"
    ui_enabled: bool = False
    conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shuffle_partitions <= 0:
            raise ConfigError("spark.shuffle_partitions must be positive")


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow tracking; the embedded SQLite store by default."""

    enabled: bool = True
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "recsys-spark"
