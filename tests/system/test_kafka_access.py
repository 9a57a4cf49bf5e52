"""Only the right producer: the broker authenticates every client and lets each principal
write, read and consume as the contract's table says ("Identity and access (Kafka)"), and
credits takes on its own ledger topic only what credits wrote.

The expected tables are written out here rather than derived from `contracts.principals`, so
that a change to the principals' table has to be made twice to pass."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from aiokafka.structs import TopicPartition

from contracts.envelope import build_event, encode
from contracts.events import Balance, CreditsGranted
from contracts.services import CREDITS, KAFKA_SASL_PASSWORD_ENV
from contracts.topics import ALL_TOPICS, CREDITS_LEDGER
from ops import kafka_access
from ops.local.topics import create_topics
from servicekit.kafka import KafkaSecurity, client_options
from testkit.helpers import read_topic

from .platform import IsolatedPlatform, delete_topics

pytestmark = pytest.mark.infra

SESSIONS, WORKOUTS, PACKAGES = "booking.sessions", "workouts.workout-sessions", "commerce.packages"
LEDGER, USAGE = "credits.ledger", "analytics.session-usage"
TOPICS = (SESSIONS, WORKOUTS, PACKAGES, LEDGER, USAGE)
EVERY_TOPIC = frozenset(TOPICS) | {f"{topic}.dlq" for topic in TOPICS}

#: What each principal may produce to: its own topic, and the `.dlq` twin of each it reads.
WRITES: dict[str, frozenset[str]] = {
    "booking": frozenset({SESSIONS, "booking.sessions.dlq", "credits.ledger.dlq"}),
    "workouts": frozenset({WORKOUTS, "booking.sessions.dlq", "workouts.workout-sessions.dlq"}),
    "credits": frozenset(
        {
            LEDGER,
            "booking.sessions.dlq",
            "workouts.workout-sessions.dlq",
            "commerce.packages.dlq",
            "credits.ledger.dlq",
        }
    ),
    "analytics": frozenset(
        {USAGE, "booking.sessions.dlq", "workouts.workout-sessions.dlq", "credits.ledger.dlq"}
    ),
    "platform": frozenset({SESSIONS}),
    "store": frozenset({PACKAGES}),
    "subscriber": frozenset(),
    "ops": EVERY_TOPIC,
}
#: What each principal may consume: a service its inputs, a subscriber the usage updates.
READS: dict[str, frozenset[str]] = {
    "booking": frozenset({SESSIONS, LEDGER}),
    "workouts": frozenset({SESSIONS, WORKOUTS}),
    "credits": frozenset({SESSIONS, WORKOUTS, PACKAGES, LEDGER}),
    "analytics": frozenset({SESSIONS, WORKOUTS, LEDGER}),
    "platform": frozenset(),
    "store": frozenset(),
    "subscriber": frozenset({USAGE}),
    "ops": EVERY_TOPIC,
}
#: Consumer groups, and a topic their owner reads (where the tests commit offsets).
GROUPS = {
    "booking": SESSIONS,
    "workouts": WORKOUTS,
    "credits": PACKAGES,
    "analytics": LEDGER,
    "subscriber.dashboard": USAGE,
}
#: The groups each principal may use: a service its own, a subscriber those named for it.
USES_GROUPS: dict[str, frozenset[str]] = {
    "booking": frozenset({"booking"}),
    "workouts": frozenset({"workouts"}),
    "credits": frozenset({"credits"}),
    "analytics": frozenset({"analytics"}),
    "platform": frozenset(),
    "store": frozenset(),
    "subscriber": frozenset({"subscriber.dashboard"}),
    "ops": frozenset(GROUPS),
}
PRINCIPALS = sorted(WRITES)


@pytest.fixture(scope="module")
def credentials(servers: Any) -> Any:
    if servers.kafka_credentials is None:
        pytest.skip("the broker named in the environment: its principals' passwords are unknown")
    return servers.kafka_credentials


def as_principal(credentials: Any, principal: str, password: str | None = None) -> dict[str, Any]:
    """aiokafka options of a client authenticating as `principal`."""
    environment = credentials.environment(principal)
    if password is not None:
        environment[KAFKA_SASL_PASSWORD_ENV] = password
    return KafkaSecurity.model_validate(environment).aiokafka_options()


@pytest.fixture(scope="module")
async def prefix(servers: Any, credentials: Any) -> AsyncIterator[str]:
    """A copy of the platform's topics and ACLs behind a prefix, no service reading them; one
    record in partition 0 of each topic, and each group's offset committed there."""
    bootstrap = servers.kafka_bootstrap
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await create_topics(bootstrap, [topic.with_prefix(prefix) for topic in ALL_TOPICS])
    await kafka_access.grant(bootstrap, kafka_access.platform_acls(prefix))
    try:
        producer = AIOKafkaProducer(**client_options(), bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for topic in EVERY_TOPIC:
                await producer.send_and_wait(prefix + topic, b"seed", key=b"1", partition=0)
        finally:
            await producer.stop()
        for group, topic in GROUPS.items():
            await commit(bootstrap, client_options(), prefix + group, prefix + topic)
        yield prefix
    finally:
        await delete_topics(bootstrap, prefix)
        await kafka_access.revoke(bootstrap, kafka_access.platform_acls(prefix))


async def commit(bootstrap: str, options: dict[str, Any], group: str, topic: str) -> None:
    """Commit offset 1 of `topic`'s partition 0 in `group`, as the client `options` say."""
    consumer = AIOKafkaConsumer(
        **options, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.commit({partition: 1})
    finally:
        await consumer.stop()


def unprefixed(names: Iterable[str], prefix: str) -> set[str]:
    return {name.removeprefix(prefix) for name in names}


# --- who may write and read what -----------------------------------------------------------


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_a_principal_writes_only_the_topics_the_contract_gives_it(
    servers: Any, credentials: Any, prefix: str, principal: str
) -> None:
    producer = AIOKafkaProducer(
        **as_principal(credentials, principal), bootstrap_servers=servers.kafka_bootstrap
    )
    await producer.start()
    written: set[str] = set()
    refused: set[str] = set()
    try:
        for topic in sorted(EVERY_TOPIC):
            try:
                await producer.send_and_wait(prefix + topic, b"{}", key=b"1")
            except TopicAuthorizationFailedError:
                refused.add(topic)
            else:
                written.add(topic)
    finally:
        await producer.stop()

    assert written == WRITES[principal]
    assert refused == EVERY_TOPIC - WRITES[principal]


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_a_principal_reads_only_the_topics_the_contract_gives_it(
    servers: Any, credentials: Any, prefix: str, principal: str
) -> None:
    consumer = AIOKafkaConsumer(
        **as_principal(credentials, principal), bootstrap_servers=servers.kafka_bootstrap
    )
    await consumer.start()
    read: set[str] = set()
    refused: set[str] = set()
    try:
        # A topic the principal may not even describe is left out of what the broker shows.
        shown = unprefixed(await consumer.topics(), prefix)
        refused |= EVERY_TOPIC - shown
        for topic in sorted(EVERY_TOPIC & shown):
            partition = TopicPartition(prefix + topic, 0)
            consumer.assign([partition])
            consumer.seek(partition, 0)
            try:
                batch = await consumer.getmany(partition, timeout_ms=10_000)
            except TopicAuthorizationFailedError:
                refused.add(topic)
            else:
                assert [r.value for r in batch.get(partition, [])][:1] == [b"seed"], topic
                read.add(topic)
    finally:
        await consumer.stop()

    assert read == READS[principal]
    assert refused == EVERY_TOPIC - READS[principal]


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_a_principal_sees_the_offsets_of_its_own_consumer_groups_only(
    servers: Any, credentials: Any, prefix: str, principal: str
) -> None:
    admin = AIOKafkaAdminClient(
        **as_principal(credentials, principal), bootstrap_servers=servers.kafka_bootstrap
    )
    await admin.start()
    seen: set[str] = set()
    refused: set[str] = set()
    try:
        for group, topic in GROUPS.items():
            try:
                offsets = await admin.list_consumer_group_offsets(prefix + group)
            except GroupAuthorizationFailedError:
                refused.add(group)
            else:
                assert offsets[TopicPartition(prefix + topic, 0)].offset == 1, group
                seen.add(group)
    finally:
        await admin.close()

    assert seen == USES_GROUPS[principal]
    assert refused == set(GROUPS) - USES_GROUPS[principal]


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if READS[p]])
async def test_a_principal_commits_in_its_own_consumer_groups_only(
    servers: Any, credentials: Any, prefix: str, principal: str
) -> None:
    """Each commit is of a topic the principal may read: only the group can refuse it."""
    topic = sorted(READS[principal])[0]
    committed: set[str] = set()
    refused: set[str] = set()
    for group in GROUPS:
        try:
            await commit(
                servers.kafka_bootstrap,
                as_principal(credentials, principal),
                prefix + group,
                prefix + topic,
            )
        except GroupAuthorizationFailedError:
            refused.add(group)
        else:
            committed.add(group)

    assert committed == USES_GROUPS[principal]
    assert refused == set(GROUPS) - USES_GROUPS[principal]


# --- who gets in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "password"),
    [("credits", "not-its-password"), ("intruder", "any"), ("credits", None)],
    ids=["wrong password", "unknown principal", "no credentials"],
)
async def test_a_client_without_a_principals_password_cannot_connect(
    servers: Any, credentials: Any, principal: str, password: str | None
) -> None:
    options = (
        {}
        if password is None
        else as_principal(credentials, "credits")
        | {"sasl_plain_username": principal, "sasl_plain_password": password}
    )
    producer = AIOKafkaProducer(
        **options, bootstrap_servers=servers.kafka_bootstrap, request_timeout_ms=5_000
    )
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()


async def test_the_right_password_connects(servers: Any, credentials: Any) -> None:
    """The other side of the refusals above: the same client, with the password, gets in."""
    producer = AIOKafkaProducer(
        **as_principal(credentials, "credits"), bootstrap_servers=servers.kafka_bootstrap
    )
    try:
        await producer.start()
        assert producer.client.cluster.brokers()
    finally:
        await producer.stop()


async def test_a_wrong_password_is_refused_as_invalid_credentials(
    servers: Any, credentials: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The refusal is the broker's authentication, not a connection that failed otherwise."""
    options = as_principal(credentials, "credits", password="not-its-password")
    producer = AIOKafkaProducer(**options, bootstrap_servers=servers.kafka_bootstrap)
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        try:
            with pytest.raises(KafkaConnectionError):
                await producer.start()
        finally:
            await producer.stop()
    assert "invalid credentials" in caplog.text


# --- credits' own ledger -------------------------------------------------------------------


async def test_a_ledger_event_credits_did_not_write_is_dead_lettered_and_grants_nothing(
    module_platform: IsolatedPlatform,
) -> None:
    """Written by `ops`, whom the broker lets write anywhere: credits still refuses it, and so
    do booking and analytics, which read the ledger too."""
    client = 3301
    forged = CreditsGranted(
        user_id=client,
        amount=50,
        reason="forged",
        balance=Balance(total=50, used=0, remaining=50),
    )
    ledger = module_platform.topic_prefix + CREDITS_LEDGER.name
    await module_platform.publish_raw(
        CREDITS_LEDGER.name, encode(build_event(forged, source="/tests")), key=str(client).encode()
    )

    readers = {module_platform.topic_prefix + name for name in ("booking", "credits", "analytics")}

    def letters_by_reader(records: list[Any]) -> dict[str, str]:
        return {
            dict(r.headers)["dlq-consumer"].decode(): dict(r.headers)["dlq-reason"].decode()
            for r in records
        }

    letters = await read_topic(
        module_platform.kafka_bootstrap,
        ledger + ".dlq",
        until=lambda records: set(letters_by_reader(records)) == readers,
        within=60,
    )
    reason = f"CreditsGranted from /tests: only {CREDITS.event_source} writes {ledger}"
    assert letters_by_reader(letters) == dict.fromkeys(readers, reason)
    await module_platform.settled()
    async with module_platform.http() as staff:
        balance = await staff.get(module_platform.url("credits") + f"/api/credits/{client}")
        ledger_entries = await staff.get(
            module_platform.url("credits") + f"/api/credits/{client}/ledger"
        )
    assert balance.status_code == 200, balance.text
    assert balance.json()["total"] == 0
    assert ledger_entries.json() == []
