from __future__ import annotations

from pathlib import Path

import pytest

from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.config import AppConfig, ConfigError, load_config

CONF = Path(__file__).resolve().parents[3] / "conf"


def test_base_file_matches_dataclass_defaults():
    # base.yml documents every key; it must not drift from the code's defaults.
    assert load_config() == AppConfig()


def test_overlay_and_overrides_are_typed():
    cfg = load_config(
        CONF / "local.yml",
        [
            "storage.root=/tmp/elsewhere",
            "spark.shuffle_partitions=8",
            "ingest.csv_header=false",
            "ingest.csv_columns=[user_id, item_id, timestamp, event_type, value]",
        ],
    )
    assert cfg.storage.root == "/tmp/elsewhere"
    assert cfg.spark.shuffle_partitions == 8
    assert cfg.ingest.csv_columns == ("user_id", "item_id", "timestamp", "event_type", "value")


def test_csv_columns_must_hold_every_mapped_column():
    with pytest.raises(ConfigError, match="ingest.columns.value names column 'value'"):
        load_config(
            None,
            [
                "ingest.csv_header=false",
                "ingest.csv_columns=[user_id, item_id, timestamp, event_type]",
            ],
        )


def test_every_table_derives_from_the_storage_root():
    cfg = load_config(None, ["storage.root=s3a://bucket/recsys"])
    assert cfg.storage.table("interactions") == "s3a://bucket/recsys/interactions"
    local = load_config(None, ["storage.root=/tmp/lake/"])
    assert local.storage.table("quarantine") == "file:///tmp/lake/quarantine"


def test_file_replaces_a_map_but_set_changes_one_entry():
    ml = load_config(CONF / "movielens.yml")
    assert ml.ingest.event_weights == {"rating": 1.0}
    one = load_config(None, ["ingest.event_weights.view=3"])
    assert one.ingest.event_weights == {
        "view": 3.0,
        "click": 2.0,
        "add_to_cart": 4.0,
        "purchase": 8.0,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(",", ","), ("|", "|"), ("#", "#"), ("';'", ";"), ("\\t", "\\t")],
)
def test_set_takes_a_delimiter_that_is_not_yaml_as_it_is(raw, expected):
    cfg = load_config(None, [f"ingest.csv_delimiter={raw}"])
    assert cfg.ingest.csv_delimiter == expected
    # an empty value, quoted or not, stays empty
    for empty in ("''", ""):
        assert load_config(None, [f"ingest.columns.value={empty}"]).ingest.columns.value == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ingest.colums.user=x"], "unknown config key 'ingest.colums'"),
        (["spark.shuffle_partitions=many"], "'spark.shuffle_partitions' must be int"),
        (["spark.shuffle_partitions=true"], "'spark.shuffle_partitions' must be int"),
        (["ingest.format=xml"], "'ingest.format' must be one of"),
        (["ingest.event_weights.view=heavy"], "'ingest.event_weights.view' must be float"),
        (["storage"], "expected dotted.key=value"),
        (["ingest.weight_rule=value", "ingest.columns.value="], "needs ingest.columns.value"),
        (["ingest.min_timestamp=1995/01/01"], "ingest.min_timestamp must be an ISO-8601"),
        (["ingest.csv_delimiter="], "ingest.csv_delimiter must not be empty"),
        (["spark.shuffle_partitions=0"], "spark.shuffle_partitions must be positive"),
        (["als.num_item_blocks=0"], "als.num_user_blocks and als.num_item_blocks"),
        (["als.checkpoint_interval=0"], "als.checkpoint_interval must be >= 1"),
        (["als.window_days=0"], "als.window_days must be positive"),
        (["als.tuning.ranks=[64, 0]"], "als.tuning.ranks must be positive"),
        (["als.tuning.alphas=[-1]"], "als.tuning.reg_params and als.tuning.alphas"),
        (["recommend.popularity_window_days=0"], "recommend.popularity_window_days must be"),
        (["recommend.min_interactions=-1"], "recommend.min_interactions must be >= 0"),
        (["similarity.half_life_days=-3"], "similarity.half_life_days must be positive"),
        (["evaluation.cut=March"], "evaluation.cut must be an ISO time"),
        (["nightly.gate_tolerance=.nan"], "nightly.gate_tolerance must be a number"),
    ],
)
def test_bad_config_fails_with_one_line_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, overrides)
    assert "\n" not in str(info.value)


def test_an_unquoted_date_is_text_in_iso_form():
    cfg = load_config(None, ["ingest.min_timestamp=2000-01-01", "storage.root=2026-12-02"])
    assert (cfg.ingest.min_timestamp, cfg.storage.root) == ("2000-01-01", "2026-12-02")
    stamped = load_config(None, ["ingest.min_timestamp=2000-01-01T06:00:00Z"])
    assert stamped.ingest.min_timestamp == "2000-01-01T06:00:00+00:00"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yml"):
        load_config(tmp_path / "nope.yml")


def test_job_exits_2_with_message_before_spark(capsys):
    parser = job_parser("test job")
    with pytest.raises(SystemExit) as info:
        parse_job_args(parser, ["--set", "spark.master=", "--set", "nosuch.key=1"])
    assert info.value.code == 2
    assert "unknown config key 'nosuch'" in capsys.readouterr().err
