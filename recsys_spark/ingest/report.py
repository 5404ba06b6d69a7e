"""What one ingest batch did: per-file outcomes and the batch's reconciled counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from recsys_spark.io.files import SourceFile


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one raw file in a batch."""

    file: SourceFile
    status: str  # ingested | failed | parked (ingest_log also says refused, unreconciled)
    rows_read: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    event_dates: tuple[date, ...] = ()  # dates of the file's valid events, sorted
    reasons: tuple[tuple[str, int, str], ...] = ()  # (reason, rows, a raw example)
    attempts: int = 1  # reads of this file so far, this one included


@dataclass(frozen=True)
class IngestReport:
    """Counts of one ingest batch; `rows_read` must equal the sum of the four outcomes."""

    batch_id: str | None
    files_seen: int
    files_skipped: int
    files: tuple[FileOutcome, ...] = ()
    rows_read: int = 0
    rows_inserted: int = 0
    duplicates_in_batch: int = 0
    duplicates_existing: int = 0
    rows_quarantined: int = 0
    new_users: int = 0
    new_items: int = 0
    interactions_version: int | None = None
    problems: tuple[str, ...] = field(default=())
    files_ignored: tuple[str, ...] = ()  # names that are not of ingest.format
    files_parked: tuple[str, ...] = ()  # files given up on, still in the source

    @property
    def event_dates(self) -> tuple[date, ...]:
        """Every date holding a valid event of the batch, sorted."""
        return tuple(sorted({d for f in self.files for d in f.event_dates}))

    @property
    def rows_valid(self) -> int:
        """Rows that passed validation, by the read pass's own count."""
        return self.rows_read - sum(f.rows_quarantined for f in self.files)

    @property
    def files_failed(self) -> int:
        """Files of this batch that could not be read (parked ones included)."""
        return sum(f.status in ("failed", "parked") for f in self.files)

    def reason_counts(self) -> dict[str, tuple[int, str]]:
        """Quarantined rows per reason over the batch, with one raw example each."""
        totals: dict[str, tuple[int, str]] = {}
        for f in self.files:
            for reason, rows, example in f.reasons:
                count, first = totals.get(reason, (0, example))
                totals[reason] = (count + rows, first)
        return totals

    @property
    def reconciled(self) -> bool:
        accounted = (
            self.rows_inserted
            + self.duplicates_in_batch
            + self.duplicates_existing
            + self.rows_quarantined
        )
        return not self.problems and accounted == self.rows_read

    def summary(self) -> str:
        return (
            f"batch {self.batch_id}: files {len(self.files)} new ({self.files_failed} failed), "
            f"{self.files_skipped} already ingested; rows read {self.rows_read} = inserted "
            f"{self.rows_inserted} + duplicates in batch {self.duplicates_in_batch} + already "
            f"present {self.duplicates_existing} + quarantined {self.rows_quarantined}; "
            f"new users {self.new_users}, new items {self.new_items}"
            + (f"; {len(self.files_parked)} parked files" if self.files_parked else "")
            + (f"; {len(self.files_ignored)} files of another kind" if self.files_ignored else "")
        )
