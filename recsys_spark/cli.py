"""Argument parsing shared by every job: `--conf FILE` and repeated `--set key=value`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from recsys_spark.config import AppConfig, ConfigError, load_config

DEFAULT_CONF = "conf/local.yml"


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
