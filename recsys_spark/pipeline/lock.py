"""One writer at a time per storage root (a nightly, or the ingest job): an exclusive
lock file next to the tables.

The lock is `<root>/_locks/nightly.lock`, created exclusively: `O_CREAT | O_EXCL` on a
local root (atomic in the kernel), Hadoop's `create(overwrite=false)` elsewhere (atomic
on HDFS; object stores need a real lock service). It holds the owner's host, pid, run
date and start time. A second run fails at once with a message naming the owner. A lock
left by a killed run on the same host (its pid is gone) is taken over with a warning,
so a rerun after `kill -9` needs no manual step.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession

from recsys_spark.config import StorageConfig
from recsys_spark.errors import LockHeldError
from recsys_spark.io.files import hadoop_path
from recsys_spark.logs import get_logger

log = get_logger(__name__)
LOCK_FILE = "_locks/nightly.lock"


@dataclass
class RunLock:
    """An acquired lock; `release()` removes the file if it is still ours."""

    store: _LockStore
    owner: dict[str, Any]

    def release(self) -> None:
        if self.store.read() == self.owner:
            self.store.delete()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(spark: SparkSession, storage: StorageConfig, *, run_date: str) -> RunLock:
    """Take the nightly lock of `storage`, or raise LockHeldError naming its owner."""
    store = _LockStore.for_uri(spark, storage.table(LOCK_FILE))
    owner = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "run_date": run_date,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for _ in range(2):
        if store.create(json.dumps(owner, sort_keys=True)):
            return RunLock(store, owner)
        holder = store.read()
        if holder is not None and _is_stale(holder):
            log.warning("taking over the lock of a dead run %s: %s", holder, store.uri)
            store.delete()
            continue
        raise LockHeldError(
            f"another nightly or ingest holds {store.uri} ({holder or 'owner unreadable'}) and "
            "must finish first; if that run is dead on another host, delete the file and rerun"
        )
    raise LockHeldError(f"could not take {store.uri}: another run took it at the same time")


def _is_stale(holder: dict[str, Any]) -> bool:
    """True when the holder ran on this host and its process is gone."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError, TypeError):
        return False
    return False


@dataclass
class _LockStore:
    """Create / read / delete of the lock file, locally or through Hadoop's FileSystem."""

    uri: str
    spark: SparkSession | None = None  # None: a local file, handled with os calls

    @classmethod
    def for_uri(cls, spark: SparkSession, uri: str) -> _LockStore:
        return cls(uri, None if urlparse(uri).scheme in ("", "file") else spark)

    @property
    def local(self) -> Path:
        return Path(unquote(urlparse(self.uri).path))

    def create(self, content: str) -> bool:
        if self.spark is None:
            self.local.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
            return True
        fs, path = self._hadoop()
        fs.mkdirs(path.getParent())
        try:
            stream = fs.create(path, False)
        except Exception as exc:  # py4j wraps FileAlreadyExistsException
            if "already exists" in str(exc).lower() or "FileAlreadyExists" in str(exc):
                return False
            raise
        try:
            stream.write(bytearray(content.encode("utf-8")))
        finally:
            stream.close()
        return True

    def read(self) -> dict[str, Any] | None:
        if self.spark is None:
            try:
                text = self.local.read_text()
            except FileNotFoundError:
                return None
        else:
            fs, path = self._hadoop()
            if not fs.exists(path):
                return None
            text = "\n".join(r.value for r in self.spark.read.text(self.uri).collect())
        try:
            owner = json.loads(text)
        except json.JSONDecodeError:
            return None
        return owner if isinstance(owner, dict) else None

    def delete(self) -> None:
        if self.spark is None:
            self.local.unlink(missing_ok=True)
        else:
            fs, path = self._hadoop()
            fs.delete(path, False)

    def _hadoop(self) -> tuple[Any, Any]:
        assert self.spark is not None
        return hadoop_path(self.spark, self.uri)
