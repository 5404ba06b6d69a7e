"""Checks of the settings against the environment, made before any data is read.

A storage root that cannot be written, or a column mapping that names a column the
files lack, is the operator's to fix: each raises ConfigError with one line naming the
key (the job exits 2), rather than failing late, after the whole source was read, or
marking good files as broken.
"""

from __future__ import annotations

import os
import socket
import uuid

from pyspark.sql import SparkSession

from recsys_spark.config import IngestConfig
from recsys_spark.errors import ConfigError
from recsys_spark.ingest.read import first_line
from recsys_spark.io.files import SourceFile, hadoop_path, read_header
from recsys_spark.logs import get_logger

log = get_logger(__name__)


def check_writable(spark: SparkSession, root: str) -> None:
    """Create and delete a small file under `root`; ConfigError naming storage.root if not."""
    name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        fs, probe = hadoop_path(spark, f"{root.rstrip('/')}/_write_check-{name}")
        stream = fs.create(probe, True)
        stream.write(b"ok")
        stream.close()
        fs.delete(probe, False)
    except Exception as exc:  # noqa: BLE001 - any failure means the tables cannot be written
        raise ConfigError(
            f"storage.root {root} cannot be written ({first_line(exc)}): set storage.root to a "
            "folder or URI this job can write"
        ) from None


def check_mapped_columns(spark: SparkSession, cfg: IngestConfig, files: list[SourceFile]) -> None:
    """ConfigError naming the key, the column and the file when a CSV file's header or a
    Parquet file's schema lacks a column that `ingest.columns` maps.

    A file whose header cannot be read at all is left to the read, which records it as
    unreadable. JSON lines have no header: a missing key reads as null and the rows are
    quarantined (and the batch refused) as missing.
    """
    if cfg.format == "json" or (cfg.format == "csv" and not cfg.csv_header):
        return
    mapped = {
        key: name
        for key, name in (
            ("user", cfg.columns.user),
            ("item", cfg.columns.item),
            ("timestamp", cfg.columns.timestamp),
            ("event_type", cfg.columns.event_type),
            ("value", cfg.columns.value),
        )
        if name
    }
    for f in files:
        try:
            if cfg.format == "csv":
                columns = read_header(spark, f.path, cfg.csv_delimiter)
            else:
                columns = spark.read.parquet(f.path).columns
        except Exception as exc:  # noqa: BLE001 - a broken file: the read records it
            log.info(
                "cannot read the columns of %s (%s): left to the read", f.path, first_line(exc)
            )
            continue
        if not columns:  # an empty file: nothing to map
            continue
        missing = [(key, name) for key, name in mapped.items() if name not in columns]
        if missing:
            key, name = missing[0]
            raise ConfigError(
                f"ingest.columns.{key} names column '{name}', which {f.path} does not have "
                f"(its columns: {', '.join(columns)}); nothing was read"
            )
