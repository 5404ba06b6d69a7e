"""Listing and reading raw interaction-log files (CSV, JSON lines, Parquet).

Raw logs are read with every mapped column as a string, so one validation path serves
every format, and nothing is dropped by a reader: CSV and JSON rows that do not parse
(a wrong number of fields, broken JSON) come back with their raw text in the corrupt
record column, to be quarantined.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark.errors import SourceError


def hadoop_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """The Hadoop FileSystem of `path` and its Hadoop Path (any scheme Hadoop knows)."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath  # type: ignore[attr-defined]


FORMATS = ("csv", "json", "parquet")


@dataclass(frozen=True)
class SourceFile:
    """One raw log file as the file system reports it."""

    path: str
    size_bytes: int
    modified_at: datetime


# Compression suffixes Hadoop's codecs read: `events.csv.gz` is a CSV file.
COMPRESSION_SUFFIXES = ("gz", "bz2", "deflate", "snappy", "zst", "lz4", "br", "xz")


@dataclass(frozen=True)
class SourceListing:
    """The files a source holds: those to read, and those whose name says another kind."""

    files: list[SourceFile]
    ignored: list[SourceFile]


def list_source_files(
    spark: SparkSession, source: str, extensions: tuple[str, ...] = ()
) -> SourceListing:
    """Every data file at `source` (a file, or a folder searched recursively), sorted by path.

    Hidden files and Spark/Hadoop markers (names starting with `.` or `_`) are skipped, and
    so is everything below a folder so named (`_temporary/`, `.staging/`, `_delta_log/`):
    an upstream job's files in progress. In a folder, a file whose name does not end in
    one of `extensions` (optionally followed by a compression suffix) is `ignored`; a
    source that names one file reads it whatever its name. No `extensions`: every file.
    Works for any file system Hadoop knows (local paths, s3a://, abfss://, dbfs:/).
    """
    fs, path = hadoop_path(spark, source)
    if not fs.exists(path):
        raise SourceError(f"source not found: {source} (set ingest.source to a file or folder)")
    root = fs.makeQualified(path).toString().rstrip("/")
    found = []
    listing = fs.listFiles(path, True)
    while listing.hasNext():
        status = listing.next()
        full = status.getPath().toString()
        below = full[len(root) :] if full.startswith(root + "/") else ""
        names = [n for n in below.split("/") if n] or [status.getPath().getName()]
        if any(n.startswith((".", "_")) for n in names):
            continue
        modified = datetime.fromtimestamp(status.getModificationTime() / 1000, tz=UTC)
        found.append(SourceFile(status.getPath().toString(), status.getLen(), modified))
    found.sort(key=lambda f: f.path)
    if not extensions or not fs.getFileStatus(path).isDirectory():
        return SourceListing(found, [])
    wanted = has_extension(extensions)
    return SourceListing(
        [f for f in found if wanted(f.path)], [f for f in found if not wanted(f.path)]
    )


def has_extension(extensions: tuple[str, ...]):
    """A test of a path: does its name end in `.<ext>` or `.<ext>.<compression>`?"""
    endings = tuple(
        f".{e}{suffix}".lower()
        for e in extensions
        for suffix in ("", *(f".{c}" for c in COMPRESSION_SUFFIXES))
    )
    return lambda path: path.rsplit("/", 1)[-1].lower().endswith(endings)


def read_header(spark: SparkSession, path: str, delimiter: str) -> list[str]:
    """The column names in the header line of the CSV file at `path`.

    Reads the first line straight from the file system (decompressing as Hadoop would by
    the name's suffix), no Spark job: a batch checks every file's header before reading
    any data. An empty file has no columns. Raises OSError/UnicodeDecodeError (or the
    codec's error) when the file cannot be read as text.
    """
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    stream = hpath.getFileSystem(hadoop_conf).open(hpath)
    try:
        codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(hadoop_conf).getCodec(
            hpath
        )
        text = codec.createInputStream(stream) if codec is not None else stream
        reader = jvm.java.io.BufferedReader(
            jvm.java.io.InputStreamReader(text, jvm.java.nio.charset.StandardCharsets.UTF_8)
        )
        line = reader.readLine()
    finally:
        stream.close()
    if line is None:
        return []
    line = str(line).lstrip("\ufeff")
    return next(csv.reader([line], delimiter=delimiter), [])


def read_raw_logs(
    spark: SparkSession,
    paths: list[str],
    fmt: str,
    raw_columns: list[str],
    *,
    csv_delimiter: str = ",",
    csv_header: bool = True,
    file_columns: list[str] | None = None,
    id_columns: tuple[str, ...] = (),
) -> DataFrame:
    """Read raw log files, every column in `raw_columns` as a string.

    Parameters
    ----------
    paths
        Files to read, all of format `fmt` (csv, json or parquet).
    raw_columns
        The columns to keep, by their names in the files.
    file_columns
        For CSV: every column of the files, in order (the header, or `csv_columns`).
    id_columns
        The id columns among `raw_columns`: in Parquet, whole numbers typed as floating
        point or decimal read as integers (`_id_text`).

    Returns
    -------
    DataFrame
        `raw_columns` as strings, `_malformed` (the row did not parse: wrong number of
        fields, broken JSON), `raw` (the row's original text: the broken line for rows
        that did not parse, else its fields as JSON) and `source_file` (spelt as in
        `paths`).
    """
    if fmt == "csv":
        names = file_columns or raw_columns
        schema = _string_schema(names, with_corrupt=True)
        df = (
            spark.read.schema(schema)
            .option("header", csv_header)
            .option("enforceSchema", not csv_header)  # a header that disagrees fails the file
            .option("sep", csv_delimiter)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", C.CORRUPT_RECORD)
            .csv(paths)
        )
    elif fmt == "json":
        schema = _string_schema(raw_columns, with_corrupt=True)
        df = (
            spark.read.schema(schema)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", C.CORRUPT_RECORD)
            .json(paths)
        )
    elif fmt == "parquet":
        df = spark.read.parquet(*paths)
        missing = [c for c in raw_columns if c not in df.columns]
        if missing:
            raise SourceError(
                f"parquet files lack the mapped columns {missing}; see ingest.columns"
            )
        # Ids are read as `_id_text` says; the raw text keeps each value as the file
        # typed it (an id 42.5 stays 42.5).
        typed = {c: F.col(f"`{c}`") for c in raw_columns}
        ids = {c: _id_text(df.schema[c].dataType, typed[c]) for c in id_columns}
        df = df.select(
            *[_text(df.schema[c].dataType, ids.get(c, typed[c])).alias(c) for c in raw_columns],
            F.lit(None).cast("string").alias(C.CORRUPT_RECORD),
            F.to_json(F.struct(*[typed[c].cast("string").alias(c) for c in raw_columns])).alias(
                C.RAW
            ),
        )
    else:
        raise SourceError(f"unknown format '{fmt}' (one of {', '.join(FORMATS)})")
    raw = F.col(C.RAW) if fmt == "parquet" else _raw_text(raw_columns)
    return df.select(
        *[F.col(f"`{c}`") for c in raw_columns],
        F.col(C.CORRUPT_RECORD).isNotNull().alias(C.MALFORMED),
        raw.alias(C.RAW),
        _source_file(spark, paths).alias(C.SOURCE_FILE),
    )


def _text(data_type: T.DataType, value: Column) -> Column:
    """A Parquet value as text: lists, maps and structs as JSON (`["a","b"]`), as a JSON
    lines file holds them; anything else cast to string."""
    if isinstance(data_type, (T.ArrayType, T.MapType, T.StructType)):
        return F.to_json(value)
    return value.cast("string")


def _id_text(data_type: T.DataType, value: Column) -> Column:
    """A Parquet id as text. A floating-point or decimal id is a whole number written with
    a fraction (pandas stores an integer id column with gaps as float64): 42.0 is id "42",
    as it would be in an integer column. NaN and fractions (42.5) are no id (null).
    """
    if not isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
        return value
    return F.when(value % 1 == 0, value.try_cast("decimal(38,0)"))


def _source_file(spark: SparkSession, paths: list[str]) -> Column:
    """Each row's file, spelt as in `paths` (as `list_source_files` spells them).

    Spark's `_metadata.file_path` is URI-encoded (a space reads `%20`): it is mapped back.
    A single file needs no per-row lookup at all, which is also cheaper.
    """
    if len(paths) == 1:
        return F.lit(paths[0])
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    encoded = {str(jvm.org.apache.hadoop.fs.Path(p).toUri().toString()): p for p in paths}
    renamed = {uri: path for uri, path in encoded.items() if uri != path}
    path = F.col("_metadata.file_path")
    if not renamed:
        return path
    spelling = F.create_map(*chain.from_iterable((F.lit(k), F.lit(v)) for k, v in renamed.items()))
    return F.coalesce(F.try_element_at(spelling, path), path)


def _raw_text(raw_columns: list[str]) -> Column:
    fields = F.to_json(F.struct(*[F.col(f"`{c}`") for c in raw_columns]))
    return F.coalesce(F.col(C.CORRUPT_RECORD), fields)


def _string_schema(names: list[str], *, with_corrupt: bool) -> T.StructType:
    fields = [T.StructField(n, T.StringType(), True) for n in names]
    if with_corrupt:
        fields.append(T.StructField(C.CORRUPT_RECORD, T.StringType(), True))
    return T.StructType(fields)
