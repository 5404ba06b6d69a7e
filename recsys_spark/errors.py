"""Every error a user can cause or fix, in one place, with the exit code a job maps it to.

Jobs turn these into a one-line message and an exit code (`recsys_spark.cli.run_job`):
2 for configuration and input problems, 1 for a batch that cannot be trusted, 4 for a
held lock. Anything else is a bug or an environment failure and keeps its traceback.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names the key or file."""


class SourceError(ValueError):
    """The configured source cannot be used: its path does not exist (the job exits 2).

    A file's own problems (no mapped columns, an unknown format) raise it too, inside the
    read of that file, which records it as the file's failure. An empty folder is no
    error: the ingest logs a warning and finds nothing new.
    """


class MissingInputError(RuntimeError):
    """A table a stage reads does not exist; the message says which job creates it."""


class HoldoutError(RuntimeError):
    """The holdout has nothing to train or score on; the message says which setting to change."""


class ReconciliationError(RuntimeError):
    """The batch's row counts do not add up: rows were lost or invented somewhere."""


class BatchRefusedError(RuntimeError):
    """The circuit breaker refused an ingest batch: most of its rows failed validation,
    which is a setting's mistake more often than bad data. Nothing was committed to
    interactions; the message names the dominant reason, an example and a hint."""


class NoReadableFileError(RuntimeError):
    """Every new file of an ingest batch failed to read: nothing was ingested."""


class LockHeldError(RuntimeError):
    """Another nightly holds the lock of this storage root."""


class SparkSetupError(RuntimeError):
    """Spark or its Delta jars cannot be set up; the message says how to fix it."""


# The exit code of each error a job reports in one line (the first match wins).
EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (LockHeldError, 4),
    (ReconciliationError, 1),
    (NoReadableFileError, 1),
    (BatchRefusedError, 2),
    (ConfigError, 2),
    (SourceError, 2),
    (MissingInputError, 2),
    (HoldoutError, 2),
    (SparkSetupError, 2),
)
