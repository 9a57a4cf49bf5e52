"""The broker's configuration, jar cache and Java checks, without starting anything."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ops.local import errors, kafka
from ops.local.config import KafkaSettings
from ops.local.paths import Paths
from ops.local.secrets import KafkaCredentials

CREDENTIALS = KafkaCredentials({"ops": "ops-secret", "controller": "controller-secret"})


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def test_server_properties_describe_a_single_node_kraft_cluster_on_loopback() -> None:
    text = kafka.render_server_properties(
        port=9092,
        controller_port=9093,
        data_dir=Path("/x/.local/kafka/data"),
        credentials=CREDENTIALS,
    )
    props = _properties(text)

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["listeners"] == "CLIENT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "CLIENT://127.0.0.1:9092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert props["log.dirs"] == "/x/.local/kafka/data"


def test_every_client_authenticates_and_nothing_is_allowed_without_an_acl() -> None:
    props = _properties(
        kafka.render_server_properties(
            port=9092, controller_port=9093, data_dir=Path("/d"), credentials=CREDENTIALS
        )
    )

    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT"
    )
    assert props["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:ops;User:controller"
    assert 'password="ops-secret"' in props["listener.name.client.scram-sha-512.sasl.jaas.config"]


def test_server_properties_never_name_static_voters_which_standalone_format_rejects() -> None:
    text = kafka.render_server_properties(
        port=1, controller_port=2, data_dir=Path("/d"), credentials=CREDENTIALS
    )

    assert "controller.quorum.voters" not in text


def test_internal_topics_fit_one_broker_and_groups_start_at_once() -> None:
    props = _properties(
        kafka.render_server_properties(
            port=1, controller_port=2, data_dir=Path(), credentials=CREDENTIALS
        )
    )

    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["broker.session.timeout.ms"] == "4000"
    assert props["auto.create.topics.enable"] == "false"


def test_server_properties_are_private_and_rewritten_only_when_they_change(
    tmp_path: Path,
) -> None:
    paths = Paths(tmp_path)
    settings = KafkaSettings("127.0.0.1:9092", 9092, 9093, named_in_env=False)
    kafka.write_server_properties(paths, settings, CREDENTIALS)
    first = paths.kafka_properties.stat().st_mtime_ns

    kafka.write_server_properties(paths, settings, CREDENTIALS)

    assert paths.kafka_properties.stat().st_mtime_ns == first
    assert oct(paths.kafka_properties.stat().st_mode & 0o777) == "0o600"


def test_cluster_ids_look_like_kafkas_own() -> None:
    ids = {kafka.new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cluster_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ("something else entirely", None),
    ],
)
def test_java_major_version_reads_both_version_schemes(output: str, major: int | None) -> None:
    assert kafka.java_major_version(output) == major


def test_missing_java_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    with pytest.raises(errors.PlatformError) as raised:
        kafka.find_java()

    assert str(raised.value) == (
        "Java was not found: install a Java 17 runtime: apt-get install openjdk-17-jre-headless"
    )


def _paths_with_pom(tmp_path: Path, pom: str) -> Paths:
    paths = Paths(tmp_path)
    paths.kafka_pom.parent.mkdir(parents=True)
    paths.kafka_pom.write_text(pom)
    return paths


def test_jar_cache_counts_only_when_its_stamp_matches_the_pom(tmp_path: Path) -> None:
    paths = _paths_with_pom(tmp_path, "<project>4.1.1</project>")
    paths.kafka_libs.mkdir(parents=True)
    assert not kafka.jars_are_cached(paths)

    paths.kafka_libs_stamp.write_text(kafka.pom_digest(paths.kafka_pom) + "\n")
    assert kafka.jars_are_cached(paths)

    paths.kafka_pom.write_text("<project>4.2.0</project>")
    assert not kafka.jars_are_cached(paths)


def test_fetching_jars_without_maven_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _paths_with_pom(tmp_path, "<project/>")
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    with pytest.raises(errors.PlatformError, match="apt-get install maven"):
        kafka.ensure_jars(paths, lambda _line: None)
