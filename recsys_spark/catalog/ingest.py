"""Catalogue ingest: item metadata and exclusions, validated, MERGEd into Delta by id.

A catalogue file is a snapshot (full or partial) of the items, not a log: every run reads
the configured files whole, quarantines the rows that fail validation (with a reason,
the raw row and the file), collapses exact repeats, and MERGEs the rest into `items`
(by item id) or `exclusions` (by user and item). A run whose files (paths, sizes,
modification times) and settings are those of the batch that last wrote the table does
not read them again; a file rewritten with the same rows is read and commits nothing,
so the table's Delta versions are its change history. A batch with too many
bad rows is refused (nothing merged; its rows stay in quarantine as `refused`), and
every batch writes one `catalog_batches` row whose counts must add up:
`rows_read = rows_valid + duplicates + rows_quarantined`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog import schemas as S
from recsys_spark.config import CatalogConfig, StorageConfig
from recsys_spark.config.sections_catalog import CatalogFile, ExclusionsFile, ItemsFile
from recsys_spark.config.sections_data import DEFAULT_EXTENSIONS
from recsys_spark.errors import BatchRefusedError, ConfigError, ReconciliationError, SourceError
from recsys_spark.ingest.checks import check_writable
from recsys_spark.ingest.schemas import QUARANTINE
from recsys_spark.ingest.validate import parse_timestamp
from recsys_spark.io import delta
from recsys_spark.io.files import list_source_files, read_header, read_raw_logs
from recsys_spark.logs import get_logger, stage

log = get_logger(__name__)

ITEMS_KIND, EXCLUSIONS_KIND = "items", "exclusions"
_FILE = "_f_"  # prefix of the file's columns while a batch is validated
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


@dataclass(frozen=True)
class CatalogReport:
    """What one catalogue batch read, merged and quarantined."""

    kind: str
    batch_id: str
    files: int
    rows_read: int
    rows_valid: int
    duplicates: int
    rows_quarantined: int
    inserted: int = 0
    updated: int = 0
    deactivated: int = 0
    table_version: int | None = None
    # merged | unchanged | refused; skipped (not stored): files and settings as in the
    # batch that left the table as it is, not read again
    status: str = "merged"

    @property
    def reconciled(self) -> bool:
        return self.rows_read == self.rows_valid + self.duplicates + self.rows_quarantined

    def summary(self) -> str:
        return (
            f"{self.kind}: {self.rows_read} rows read from {self.files} file(s), "
            f"{self.rows_valid} valid, {self.duplicates} repeats, "
            f"{self.rows_quarantined} quarantined; {self.inserted} inserted, "
            f"{self.updated} updated, {self.deactivated} deactivated ({self.status}, "
            f"version {self.table_version})"
        )


@dataclass(frozen=True)
class _Kind:
    """What differs between the two catalogue tables."""

    name: str
    table: str
    quarantine: str
    keys: tuple[str, ...]
    content: tuple[str, ...]
    schema: T.StructType
    validate: Callable[[DataFrame, CatalogFile, list[str]], DataFrame]


def ingest_catalog(
    spark: SparkSession,
    cfg: CatalogConfig,
    storage: StorageConfig,
    *,
    kinds: tuple[str, ...] = (ITEMS_KIND, EXCLUSIONS_KIND),
    now: datetime | None = None,
) -> list[CatalogReport]:
    """Ingest each configured catalogue file of `kinds` (a source "" is skipped).

    Raises SourceError (a missing source or an unreadable file), ConfigError (a mapped
    column the files lack), BatchRefusedError (too many bad rows: nothing merged) or
    ReconciliationError (the counts do not add up). A kind raising leaves its table at
    its last version.
    """
    now = now or datetime.now(UTC).replace(microsecond=0)
    check_writable(spark, storage.root)
    reports = []
    for kind in kinds:
        spec = cfg.items if kind == ITEMS_KIND else cfg.exclusions
        if not spec.source:
            continue
        with stage(log, f"catalogue ingest ({kind})"):
            report = _ingest(spark, _KINDS[kind], spec, cfg.max_quarantine_share, storage, now)
        log.info("%s", report.summary())
        reports.append(report)
    return reports


def _ingest(
    spark: SparkSession,
    kind: _Kind,
    spec: CatalogFile,
    max_share: float,
    storage: StorageConfig,
    now: datetime,
) -> CatalogReport:
    files = list_source_files(spark, spec.source, DEFAULT_EXTENSIONS[spec.format]).files
    if not files:
        raise SourceError(f"catalog.{kind.name}.source {spec.source} holds no {spec.format} file")
    batch_id = _batch_id(kind.name, files, spec)
    version = _version_left_by(spark, storage, kind, batch_id)
    if version is not None:
        log.info(
            "catalog.%s: %d file(s) and settings as in batch %s, and %s still at the version "
            "it left (%d): not read again",
            kind.name,
            len(files),
            batch_id,
            kind.table,
            version,
        )
        nothing = (0, 0, 0, 0)  # rows read, valid, repeats, quarantined
        return CatalogReport(
            kind.name, batch_id, len(files), *nothing, table_version=version, status="skipped"
        )
    paths = [f.path for f in files]
    names = _file_columns(spark, spec, paths)
    mapped = [c for c in vars(spec.columns).values() if c]  # type: ignore[attr-defined]
    missing = [c for c in mapped if c not in names]
    if missing:
        raise ConfigError(
            f"catalog.{kind.name}.columns name {missing}, which {spec.source} lacks "
            f"(its columns: {names})"
        )
    try:
        raw = read_raw_logs(
            spark,
            paths,
            spec.format,
            names,
            csv_delimiter=spec.csv_delimiter,
            csv_header=spec.csv_header,
            file_columns=names if spec.format == "csv" else None,
            id_columns=tuple(
                c for k, c in vars(spec.columns).items() if k in ("user", "item") and c
            ),
        )
        # The file's own columns move aside (`_f_<name>`): one may be called item_id.
        raw = raw.select(
            *[F.col(f"`{n}`").alias(_FILE + n) for n in names], C.MALFORMED, C.RAW, C.SOURCE_FILE
        )
        checked = kind.validate(raw, spec, names).cache()
        rows = _collapsed(checked, kind).cache()
        counts = rows.groupBy(F.col(C.REASON).isNull().alias("_ok"), "_repeat").count().collect()
    except Exception as exc:
        if isinstance(exc, (ConfigError, SourceError)):
            raise
        raise SourceError(
            f"catalog.{kind.name}: cannot read {spec.source}: {str(exc).splitlines()[0][:300]}"
        ) from exc
    n_valid = sum(r["count"] for r in counts if r["_ok"] and not r["_repeat"])
    n_repeats = sum(r["count"] for r in counts if r["_repeat"])
    n_bad = sum(r["count"] for r in counts if not r["_ok"])
    report = CatalogReport(
        kind.name, batch_id, len(files), n_valid + n_repeats + n_bad, n_valid, n_repeats, n_bad
    )
    refused = report.rows_read > 0 and n_bad > max_share * report.rows_read
    status = "refused" if refused else "quarantined"
    _write_quarantine(spark, rows, kind, storage, batch_id, status, now)
    if refused:
        report = _log_batch(spark, storage, report, spec.source, "refused", now)
        reasons = rows.filter(F.col(C.REASON).isNotNull()).groupBy(C.REASON).count()
        top = reasons.orderBy(F.desc("count"), C.REASON).first()
        example = rows.filter(F.col(C.REASON) == top[C.REASON]).select(C.RAW).first()[0]
        raise BatchRefusedError(
            f"catalog.{kind.name}: {n_bad} of {report.rows_read} rows failed validation "
            f"(more than catalog.max_quarantine_share {max_share:g}); mostly "
            f"'{top[C.REASON]}' ({top['count']} rows), e.g. {example!r}. Nothing was "
            f"merged; check catalog.{kind.name}.columns and the file, then rerun."
        )
    good = rows.filter(F.col(C.REASON).isNull() & ~F.col("_repeat")).select(
        *[F.col(f.name) for f in kind.schema.fields if f.name not in (C.BATCH_ID, S.UPDATED_AT)],
        F.lit(batch_id).alias(C.BATCH_ID),
        F.lit(now).cast("timestamp").alias(S.UPDATED_AT),
    )
    full = isinstance(spec, ItemsFile) and spec.snapshot == "full"
    given = _given_columns(kind, spec, names)
    report = _merge(spark, good, kind, storage, report, full=full, given=given)
    checked.unpersist()
    rows.unpersist()
    report = _log_batch(spark, storage, report, spec.source, report.status, now)
    if not report.reconciled:
        raise ReconciliationError(f"catalog.{kind.name}: counts do not add up: {report.summary()}")
    return report


def _file_columns(spark: SparkSession, spec: CatalogFile, paths: list[str]) -> list[str]:
    """Every column of the files: the CSV header (or `csv_columns`), or the schema Spark
    reads from JSON lines or Parquet."""
    try:
        if spec.format == "csv":
            if not spec.csv_header:
                return list(spec.csv_columns)
            return read_header(spark, paths[0], spec.csv_delimiter)
        frame = spark.read.json(paths) if spec.format == "json" else spark.read.parquet(*paths)
        return [c for c in frame.columns if c != C.CORRUPT_RECORD]
    except Exception as exc:
        raise SourceError(f"cannot read {paths[0]}: {str(exc).splitlines()[0][:300]}") from exc


def _text(name: str) -> Column:
    """A raw column as trimmed text; blank is null. `name` "" (not mapped) is null."""
    if not name:
        return F.lit(None).cast("string")
    text = F.trim(F.col(f"`{_FILE}{name}`"))
    return F.when(text != "", text)


def _first_failure(*checks: tuple[Column, str]) -> Column:
    """The reason of the first check that holds, else null."""
    out = F.lit(None).cast("string")
    for failed, reason in reversed(checks):
        out = F.when(failed, F.lit(reason)).otherwise(out)
    return out


def _validate_items(raw: DataFrame, spec: CatalogFile, names: list[str]) -> DataFrame:
    assert isinstance(spec, ItemsFile)
    cols = spec.columns
    start, end = _text(cols.available_from), _text(cols.available_until)
    active = F.lower(_text(cols.active))
    others = [n for n in names if n not in vars(cols).values()]
    kept = sorted(spec.attributes or others)
    absent = [a for a in kept if a not in names]
    if absent:
        raise ConfigError(f"catalog.items.attributes name {absent}, which the files lack")
    categories = _text(cols.categories)
    listed = F.when(
        categories.startswith("["), F.from_json(categories, T.ArrayType(T.StringType()))
    ).otherwise(F.split(categories, _regex_literal(spec.category_separator)))
    out = raw.select(
        "*",
        _text(cols.item).alias(C.ITEM_ID),
        _text(cols.title).alias(S.TITLE),
        F.array_distinct(
            F.filter(F.transform(listed, lambda c: F.trim(c)), lambda c: c.isNotNull() & (c != ""))
        ).alias(S.CATEGORIES),
        parse_timestamp(start, "auto").alias(S.AVAILABLE_FROM),
        parse_timestamp(end, "auto").alias(S.AVAILABLE_UNTIL),
        F.when(active.isin(*_TRUE), True).when(active.isin(*_FALSE), False).alias(S.ACTIVE),
        F.map_from_arrays(
            F.array(*[F.lit(a) for a in kept]), F.array(*[_text(a) for a in kept])
        ).alias(S.ATTRIBUTES)
        if kept
        else F.create_map().cast(T.MapType(T.StringType(), T.StringType())).alias(S.ATTRIBUTES),
    )
    reason = _first_failure(
        (F.col(C.MALFORMED), "malformed_row"),
        (F.col(C.ITEM_ID).isNull(), "missing_item_id"),
        (start.isNotNull() & F.col(S.AVAILABLE_FROM).isNull(), "bad_available_from"),
        (end.isNotNull() & F.col(S.AVAILABLE_UNTIL).isNull(), "bad_available_until"),
        (active.isNotNull() & F.col(S.ACTIVE).isNull(), "bad_active"),
        (F.col(S.AVAILABLE_FROM) > F.col(S.AVAILABLE_UNTIL), "window_inverted"),
    )
    # A map's null values would compare unequal to themselves: keep only the set ones.
    attrs = F.map_filter(S.ATTRIBUTES, lambda _, v: v.isNotNull())
    return out.withColumn(S.ATTRIBUTES, attrs).withColumn(C.REASON, reason)


def _validate_exclusions(raw: DataFrame, spec: CatalogFile, names: list[str]) -> DataFrame:
    assert isinstance(spec, ExclusionsFile)
    cols = spec.columns
    until_text = _text(cols.until)
    until = parse_timestamp(until_text, "auto").cast("date")
    out = raw.select(
        "*",
        _text(cols.user).alias(C.USER_ID),
        _text(cols.item).alias(C.ITEM_ID),
        until.alias(S.UNTIL),
    )
    reason = _first_failure(
        (F.col(C.MALFORMED), "malformed_row"),
        (F.col(C.USER_ID).isNull(), "missing_user_id"),
        (F.col(C.ITEM_ID).isNull(), "missing_item_id"),
        (until_text.isNotNull() & F.col(S.UNTIL).isNull(), "bad_until"),
    )
    return out.withColumn(C.REASON, reason)


def _regex_literal(text: str) -> str:
    return "".join(f"\\{c}" if not c.isalnum() and c != " " else c for c in text)


def _collapsed(checked: DataFrame, kind: _Kind) -> DataFrame:
    """Valid rows with `_repeat` marking every copy of a key but its first.

    Items: several rows of one id with different content are all quarantined as
    `conflicting_rows` (which one is right is the catalogue owner's call). Exclusions:
    the copies of a pair fold into one, in force until the latest `until` (null: for ever).
    """
    ok = F.col(C.REASON).isNull()
    keys = [F.col(k) for k in kind.keys]
    by_key = Window.partitionBy(*keys)
    first = Window.partitionBy(*keys).orderBy(C.SOURCE_FILE, C.RAW)
    if kind.name == EXCLUSIONS_KIND:
        forever = F.max(F.col(S.UNTIL).isNull().cast("int")).over(by_key) == 1
        folded = F.when(forever, F.lit(None).cast("date")).otherwise(F.max(S.UNTIL).over(by_key))
        valid = checked.filter(ok).withColumn(S.UNTIL, folded)
    else:
        content = F.xxhash64(*[F.to_json(F.struct(*kind.content))])
        variants = F.size(F.collect_set(content).over(by_key))
        valid = checked.filter(ok).withColumn(
            C.REASON, F.when(variants > 1, F.lit("conflicting_rows"))
        )
    good = F.col(C.REASON).isNull()
    rank = F.row_number().over(first)
    valid = valid.withColumn("_repeat", good & (rank > 1))
    return valid.unionByName(checked.filter(~ok).withColumn("_repeat", F.lit(False)))


def _write_quarantine(
    spark: SparkSession,
    rows: DataFrame,
    kind: _Kind,
    storage: StorageConfig,
    batch_id: str,
    status: str,
    now: datetime,
) -> None:
    """Replace the batch's quarantine rows (a rerun of one batch writes them once)."""
    bad = rows.filter(F.col(C.REASON).isNotNull()).select(
        F.lit(batch_id).alias(C.BATCH_ID),
        C.SOURCE_FILE,
        C.REASON,
        C.RAW,
        F.lit(now).cast("timestamp").alias(C.QUARANTINED_AT),
        F.lit(status).alias(C.STATUS),
    )
    path = storage.table(kind.quarantine)
    condition = f"{C.BATCH_ID} = {delta.sql_string(batch_id)}"
    exists = delta.table_exists(spark, path)
    if exists and bad.isEmpty() and delta.read_table(spark, path).filter(condition).isEmpty():
        return  # a clean batch with nothing to take back: no commit
    delta.ensure_table(spark, path, QUARANTINE)
    delta.replace_where(bad, path, condition)


def _merge(
    spark: SparkSession,
    good: DataFrame,
    kind: _Kind,
    storage: StorageConfig,
    report: CatalogReport,
    *,
    full: bool,
    given: tuple[str, ...],
) -> CatalogReport:
    """MERGE the batch's rows by key; no commit when nothing would change.

    A matched row changes only in the `given` content columns (those the file has): a
    file of item ids and active flags leaves the titles as they are. New rows are
    inserted whole (null where the file says nothing).
    """
    path = storage.table(kind.table)
    delta.ensure_table(spark, path, kind.schema)
    target = delta.read_table(spark, path)
    differs = " OR ".join(_differs(c) for c in given) or "false"
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in kind.keys)
    joined = good.alias("s").join(target.alias("t"), on=F.expr(on), how="left")
    new = joined.filter(" AND ".join(f"t.`{k}` IS NULL" for k in kind.keys)).count()
    changed = joined.filter(f"t.`{kind.keys[0]}` IS NOT NULL AND ({differs})").count()
    gone = 0
    if full:
        live = target.filter(F.coalesce(F.col(S.ACTIVE), F.lit(True)))
        gone = live.join(good, on=list(kind.keys), how="left_anti").count()
    version = delta.table_version(spark, path)
    if new + changed + gone == 0:
        log.info("%s unchanged at version %s: nothing to merge", kind.table, version)
        return _with(report, table_version=version, status="unchanged")
    inserts = {c: f"s.`{c}`" for c in good.columns}
    updates = {c: f"s.`{c}`" for c in (*given, C.BATCH_ID, S.UPDATED_AT)}
    merge = (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(good.alias("s"), on)
        .whenMatchedUpdate(condition=differs, set=updates)
        .whenNotMatchedInsert(values=inserts)
    )
    if full:
        batch = good.select(C.BATCH_ID, S.UPDATED_AT).first()
        merge = merge.whenNotMatchedBySourceUpdate(
            condition=f"coalesce(t.`{S.ACTIVE}`, true)",
            set={
                S.ACTIVE: "false",
                C.BATCH_ID: F.lit(batch[C.BATCH_ID]),
                S.UPDATED_AT: F.lit(batch[S.UPDATED_AT]),
            },
        )
    merge.execute()
    return _with(
        report,
        inserted=new,
        updated=changed,
        deactivated=gone,
        table_version=delta.table_version(spark, path),
        status="merged",
    )


def _given_columns(kind: _Kind, spec: CatalogFile, names: list[str]) -> tuple[str, ...]:
    """The content columns a batch speaks for: mapped ones, and `attributes` when the
    file has columns besides the mapped ones (or names them in `attributes`)."""
    if kind.name == EXCLUSIONS_KIND:
        return kind.content
    assert isinstance(spec, ItemsFile)
    mapped = vars(spec.columns)
    given = [c for c in kind.content if c != S.ATTRIBUTES and mapped.get(_COLUMN_KEY[c])]
    if spec.attributes or [n for n in names if n not in mapped.values()]:
        given.append(S.ATTRIBUTES)
    return tuple(given)


_COLUMN_KEY = {  # items table column -> its key in catalog.items.columns
    S.TITLE: "title",
    S.CATEGORIES: "categories",
    S.AVAILABLE_FROM: "available_from",
    S.AVAILABLE_UNTIL: "available_until",
    S.ACTIVE: "active",
}


def _differs(column: str) -> str:
    """SQL: the column differs between target `t` and source `s` (nulls equal; maps,
    which Spark cannot compare, as their JSON text)."""
    if column == S.ATTRIBUTES:
        return f"NOT (to_json(t.`{column}`) <=> to_json(s.`{column}`))"
    return f"NOT (t.`{column}` <=> s.`{column}`)"


def _with(report: CatalogReport, **changes: object) -> CatalogReport:
    return replace(report, **changes)  # type: ignore[arg-type]


def _log_batch(
    spark: SparkSession,
    storage: StorageConfig,
    report: CatalogReport,
    source: str,
    status: str,
    now: datetime,
) -> CatalogReport:
    report = _with(report, status=status)
    row = (
        report.batch_id,
        report.kind,
        source,
        now,
        report.files,
        report.rows_read,
        report.rows_valid,
        report.duplicates,
        report.rows_quarantined,
        report.inserted,
        report.updated,
        report.deactivated,
        report.table_version,
        report.reconciled,
        status,
    )
    df = spark.createDataFrame([row], S.CATALOG_BATCHES)
    condition = f"{C.BATCH_ID} = {delta.sql_string(report.batch_id)}"
    delta.replace_where(df, storage.table(tables.CATALOG_BATCHES), condition)
    return report


def _batch_id(kind: str, files: list, spec: CatalogFile) -> str:
    """The batch's files (paths, sizes, modification times) and the settings that read them."""
    signature = "\n".join(f"{f.path}|{f.size_bytes}|{f.modified_at.isoformat()}" for f in files)
    return hashlib.md5(f"{kind}\n{spec!r}\n{signature}".encode()).hexdigest()[:16]


def _version_left_by(
    spark: SparkSession, storage: StorageConfig, kind: _Kind, batch_id: str
) -> int | None:
    """The version of `kind`'s table if it still holds what batch `batch_id` left there
    (the batch was merged, or found nothing to merge, and nothing has written the table
    since); None when the batch is new, was refused, or the table has moved on."""
    log_path = storage.table(tables.CATALOG_BATCHES)
    if not delta.table_exists(spark, log_path):
        return None
    left = (
        delta.read_table(spark, log_path)
        .filter((F.col(C.BATCH_ID) == batch_id) & F.col("status").isin("merged", "unchanged"))
        .select("table_version")
        .collect()
    )
    if not left or left[0][0] is None:
        return None
    version = delta.table_version(spark, storage.table(kind.table))
    return version if version == left[0][0] else None


_KINDS = {
    ITEMS_KIND: _Kind(
        ITEMS_KIND,
        tables.ITEMS,
        tables.ITEMS_QUARANTINE,
        (C.ITEM_ID,),
        S.ITEM_CONTENT,
        S.ITEMS,
        _validate_items,
    ),
    EXCLUSIONS_KIND: _Kind(
        EXCLUSIONS_KIND,
        tables.EXCLUSIONS,
        tables.EXCLUSIONS_QUARANTINE,
        (C.USER_ID, C.ITEM_ID),
        S.EXCLUSION_CONTENT,
        S.EXCLUSIONS,
        _validate_exclusions,
    ),
}
