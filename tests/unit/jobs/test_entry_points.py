"""The job entry points: exit codes and messages a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import generate_sample, ingest


def test_generate_sample_writes_the_configured_file(tmp_path):
    out = tmp_path / "s.csv"
    code = generate_sample.main(["--set", f"sample.path={out}", "--set", "sample.n_events=500"])
    assert code == 0
    assert len(out.read_text().splitlines()) == 501


def test_generate_sample_rejects_bad_spec(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        generate_sample.main(
            ["--set", f"sample.path={tmp_path / 'x.csv'}", "--set", "sample.n_events=-5"]
        )
    assert exit_.value.code == 2
    assert "sample.n_events must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


# The jobs build their session through the factory, which returns the running test
# session; these settings keep it as conftest made it.
SAME_SESSION = ["--set", "spark.shuffle_partitions=2", "--set", "spark.log_level=ERROR"]


def test_ingest_job_on_a_missing_source_exits_2(spark, tmp_path):
    code = ingest.main(
        [
            "--set",
            f"storage.root={tmp_path}",
            "--set",
            f"ingest.source={tmp_path / 'none'}",
            *SAME_SESSION,
        ]
    )
    assert code == 2


def test_ingest_job_where_no_file_is_readable_exits_1(spark, tmp_path):
    bad = tmp_path / "logs" / "x.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"not parquet")
    code = ingest.main(
        [
            "--set",
            f"storage.root={tmp_path / 'lake'}",
            "--set",
            f"ingest.source={bad.parent}",
            "--set",
            "ingest.format=parquet",
            *SAME_SESSION,
        ]
    )
    assert code == 1
    assert Path(tmp_path / "lake" / "ingest_log").is_dir()
