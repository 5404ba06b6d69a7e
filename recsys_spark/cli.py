"""What every job's entry point shares: `--conf FILE`, repeated `--set key=value`, exit codes.

A job is `run_job(parser, argv, body)`: parse the arguments, load the config (a config
error exits 2 before Spark starts), build the session, call `body`, and turn the errors a
user can fix (recsys_spark.errors.EXIT_CODES) into one logged line and an exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from pyspark.sql import SparkSession

from recsys_spark.config import AppConfig, load_config
from recsys_spark.errors import EXIT_CODES, ConfigError
from recsys_spark.logs import get_logger
from recsys_spark.session import get_spark

DEFAULT_CONF = "conf/local.yml"
log = get_logger(__name__)

JobBody = Callable[[SparkSession, AppConfig, argparse.Namespace], int | None]


def job_parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the options every job takes; add job-specific ones to it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--conf",
        default=DEFAULT_CONF,
        help=f"environment overlay on conf/base.yml (default {DEFAULT_CONF})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set storage.root=/tmp/lake (repeatable)",
    )
    return parser


def parse_job_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, AppConfig]:
    """Parse `argv` and load the config; a config problem exits with a one-line message."""
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.conf, args.overrides)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: config error: {exc}\n")
    return args, cfg


def exit_code(exc: BaseException) -> int | None:
    """The exit code of an error a user can fix, or None for anything else (a bug)."""
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), None)


def run_job(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    body: JobBody,
) -> int:
    """Parse, load the config, build the session, run `body`; its exit code (default 0).

    An error of `recsys_spark.errors.EXIT_CODES` is logged as one line and returns its
    code; any other error keeps its traceback (exit 1).
    """
    args, cfg = parse_job_args(parser, argv)
    try:
        return body(get_spark(cfg.spark), cfg, args) or 0
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        log.error("%s", exc)
        return code
