"""The ACLs `ops up` and compose grant, read from the contract's table of principals, and
what `ops env --as` gives a client of another platform service. No broker here: the
system tests (tests/system/test_kafka_access.py) prove a real one enforces them."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.principals import BOOKING, OPS, PLATFORM, PRINCIPALS, STORE, SUBSCRIBER
from contracts.topics import BOOKING_SESSIONS, COMMERCE_PACKAGES, CREDITS_LEDGER, TOPICS
from ops.kafka_access import Acl, Operation, PatternType, ResourceType, acls_of, platform_acls
from ops.local.config import config_from_env, principal_exports
from ops.local.errors import PlatformError
from ops.local.paths import Paths
from ops.local.secrets import ensure_kafka_credentials


def writers(topic: str, prefix: str = "") -> set[str]:
    return {
        acl.principal
        for acl in platform_acls(prefix)
        if acl.resource_type is ResourceType.TOPIC
        and acl.operation is Operation.WRITE
        and acl.name == prefix + topic
    }


@pytest.mark.parametrize("prefix", ["", "t1234."])
def test_only_the_contracts_producers_write_the_topics_that_move_credits(prefix: str) -> None:
    assert writers(CREDITS_LEDGER.name, prefix) == {"credits"}
    assert writers(COMMERCE_PACKAGES.name, prefix) == {STORE.name}
    assert writers(BOOKING_SESSIONS.name, prefix) == {BOOKING.name, PLATFORM.name}


def test_a_service_reads_its_inputs_dead_letters_into_their_twins_and_uses_its_own_groups() -> None:
    def acl(kind: ResourceType, name: str, pattern: PatternType, operation: Operation) -> Acl:
        return Acl(kind, name, pattern, BOOKING.name, operation)

    topic, literal, prefixed = ResourceType.TOPIC, PatternType.LITERAL, PatternType.PREFIXED
    read, write = Operation.READ, Operation.WRITE
    assert set(acls_of(BOOKING, "p.")) == {
        acl(topic, "p.booking.sessions", literal, write),
        acl(topic, "p.booking.sessions", literal, read),
        acl(topic, "p.booking.sessions.dlq", literal, write),
        acl(topic, "p.credits.ledger", literal, read),
        acl(topic, "p.credits.ledger.dlq", literal, write),
        acl(ResourceType.GROUP, "p.booking", prefixed, read),
    }


def test_producers_and_subscribers_outside_the_platform_get_no_dead_letter_topic() -> None:
    for principal in (PLATFORM, STORE, SUBSCRIBER):
        assert not [acl for acl in acls_of(principal) if acl.name.endswith(".dlq")]
    assert {acl.name for acl in acls_of(SUBSCRIBER)} == {"analytics.session-usage", "subscriber"}


def test_ops_holds_no_acl_it_is_the_brokers_super_user() -> None:
    assert list(acls_of(OPS)) == []
    # Everything else is somebody's: no topic of the contract lacks a writer.
    assert all(writers(topic.name) for topic in TOPICS)
    assert {acl.principal for acl in platform_acls()} == {p.name for p in PRINCIPALS} - {OPS.name}


def test_env_as_a_principal_prints_its_own_credentials(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    lines = principal_exports(config_from_env({}, paths), STORE.name)
    password = ensure_kafka_credentials(paths).passwords[STORE.name]

    assert lines == [
        "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092",
        "export KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        "export KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
        "export KAFKA_SASL_USERNAME=store",
        f"export KAFKA_SASL_PASSWORD={password}",
    ]
    assert (paths.kafka_passwords.stat().st_mode & 0o777) == 0o600


def test_env_as_a_principal_of_a_broker_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    config = config_from_env({"KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092"}, Paths(tmp_path))

    with pytest.raises(PlatformError, match="not ours"):
        principal_exports(config, STORE.name)
    assert not Paths(tmp_path).kafka_passwords.exists()
