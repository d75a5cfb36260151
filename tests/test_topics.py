"""Topics the ledger creates keep messages, and the personal data in them, only so long."""

from datetime import UTC, datetime, timedelta

from consumers.kafka import topic_configs, topics
from ledger.horizon import horizon
from ledger.keys import Epoch
from ledger.settings import Settings

ERASED_AT = datetime(2026, 3, 1, tzinfo=UTC)


def test_topics_are_created_with_the_configured_retention() -> None:
    """LEDGER_TOPIC_RETENTION=3 asks the broker to delete messages after 3 days, in segments of a day."""
    configs = topic_configs(Settings.from_env({"LEDGER_TOPIC_RETENTION": "3"}))
    assert configs == {"retention.ms": str(3 * 86_400_000), "segment.ms": str(86_400_000)}
    assert topic_configs(Settings.from_env({}))["retention.ms"] == str(7 * 86_400_000)


def test_the_checkpoint_topic_keeps_tree_heads_for_ever() -> None:
    """Witnessed tree heads never expire, while every topic that can carry personal data does."""
    settings = Settings.from_env({"LEDGER_TOPIC_RETENTION": "3"})
    planned = topics(settings)
    assert planned[settings.checkpoint_topic][1]["retention.ms"] == "-1"
    others = [configs for name, (_, configs) in planned.items() if name != settings.checkpoint_topic]
    assert len(others) == 4 and all(configs == topic_configs(settings) for configs in others)


def test_the_horizon_names_when_each_kind_of_copy_becomes_unreadable() -> None:
    """Kafka copies go after retention plus a segment roll; old key copies wait for the epochs that
    existed at the erasure to be retired, and not for later ones."""
    week = timedelta(days=7)
    epochs = [Epoch(2, ERASED_AT - timedelta(days=30), 10), Epoch(3, ERASED_AT + timedelta(days=1), 12)]
    pending = horizon(ERASED_AT, week, epochs)
    assert pending.kafka_gone_by == ERASED_AT + timedelta(days=8)
    assert pending.epochs_to_retire == [2]
    lines = pending.lines()
    assert lines[1].endswith("deleted by 2026-03-09T00:00:00Z (retention 7 days)")
    assert "after the next `rotate-key --retire` (epochs 2 still live)" in lines[2]
    assert "unreadable now" in horizon(ERASED_AT, week, epochs[1:]).lines()[2]
    assert horizon(ERASED_AT, week, epochs[1:]).as_json()["key_copies_unreadable"] is True


def test_topics_are_created_replicated_with_the_configured_minimum_in_sync() -> None:
    """LEDGER_TOPIC_MIN_INSYNC reaches every topic's configuration (the checkpoint topic's too), so an
    acks=all write needs that many copies; unset, the broker's default applies."""
    settings = Settings.from_env({"LEDGER_TOPIC_REPLICATION": "3", "LEDGER_TOPIC_MIN_INSYNC": "2"})
    assert settings.topic_replication == 3
    assert all(configs["min.insync.replicas"] == "2" for _, configs in topics(settings).values())
    assert "min.insync.replicas" not in topic_configs(Settings.from_env({}))
