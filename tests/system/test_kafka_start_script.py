"""infra/docker/kafka-start.sh, the broker of docker-compose.yml and of the tests'
testcontainers path, run here without Docker: the image's two launch scripts stand in as
the jars `make up` fetched. It must authenticate every principal of the contract with its
own password, let `ops` do anything, and deny whatever no ACL allows."""

from __future__ import annotations

import asyncio
import shlex
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

from contracts.principals import OPS, PRINCIPALS
from contracts.services import KAFKA_SASL_PASSWORD_ENV
from ops.local.kafka import BROKER_MAIN, STORAGE_TOOL_MAIN, find_java, jvm_command, new_cluster_id
from ops.local.paths import Paths
from ops.local.secrets import CONTROLLER_USER, KafkaCredentials, new_password
from servicekit.kafka import KafkaSecurity

ROOT = Path(__file__).resolve().parents[2]
START_SCRIPT = ROOT / "infra" / "docker" / "kafka-start.sh"
#: How long the broker may take to answer after the script starts it.
START_TIMEOUT = 90.0


@dataclass(frozen=True, slots=True)
class ScriptedBroker:
    bootstrap: str
    passwords: dict[str, str]

    def client(self, principal: str, password: str | None = None) -> dict[str, Any]:
        environment = KafkaCredentials(self.passwords).environment(principal)
        if password is not None:
            environment[KAFKA_SASL_PASSWORD_ENV] = password
        return {
            **KafkaSecurity.model_validate(environment).aiokafka_options(),
            "bootstrap_servers": self.bootstrap,
            "request_timeout_ms": 10_000,
        }


def _free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _launcher(path: Path, command: list[str]) -> None:
    """A stand-in for one of the image's bin/ scripts: the same Java class, the local jars."""
    path.write_text("#!/bin/sh\nexec " + shlex.join(command) + ' "$@"\n')
    path.chmod(0o700)


@pytest.fixture(scope="module")
def scripted_broker(
    servers: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScriptedBroker]:
    """`servers` first: it makes sure the jars of `make up` are there."""
    paths = Paths(ROOT)
    java = find_java()
    home = tmp_path_factory.mktemp("kafka-home")
    (home / "bin").mkdir()
    _launcher(home / "bin" / "kafka-storage.sh", jvm_command(paths, java, STORAGE_TOOL_MAIN))
    _launcher(home / "bin" / "kafka-server-start.sh", jvm_command(paths, java, BROKER_MAIN))
    internal, host, controller = _free_ports(3)
    passwords = {name: new_password() for name in [*(p.name for p in PRINCIPALS), CONTROLLER_USER]}
    environment = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_HOME": str(home),
        "KAFKA_CONFIG_DIR": str(home / "config"),
        "CLUSTER_ID": new_cluster_id(),
        "KAFKA_LOG_DIRS": str(home / "data"),
        "KAFKA_LISTENERS": (
            f"INTERNAL://127.0.0.1:{internal},HOST://127.0.0.1:{host},"
            f"CONTROLLER://127.0.0.1:{controller}"
        ),
        "KAFKA_ADVERTISED_LISTENERS": (f"INTERNAL://127.0.0.1:{internal},HOST://127.0.0.1:{host}"),
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{controller}",
        **{f"KAFKA_{name.upper()}_PASSWORD": p for name, p in passwords.items()},
    }
    log = home / "broker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["/bin/bash", str(START_SCRIPT)], env=environment, stdout=output, stderr=output
        )
    broker = ScriptedBroker(f"127.0.0.1:{host}", passwords)
    try:
        if not asyncio.run(_answers_in_time(broker, process)):
            pytest.fail(f"the broker of kafka-start.sh did not answer:\n{log.read_text()[-4000:]}")
        yield broker
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _answers_in_time(broker: ScriptedBroker, process: subprocess.Popen[bytes]) -> bool:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    while asyncio.get_running_loop().time() < deadline and process.poll() is None:
        admin = AIOKafkaAdminClient(**broker.client(OPS.name))
        try:
            await admin.start()
            await admin.describe_cluster()
            return True
        except KafkaError:
            await asyncio.sleep(1)
        finally:
            await admin.close()
    return False


@pytest.fixture
async def topic(scripted_broker: ScriptedBroker) -> AsyncIterator[str]:
    """A topic `ops` made (only a super user can, before any ACL exists)."""
    name = "scripted." + new_password()[:8].replace("-", "x").replace("_", "x")
    admin = AIOKafkaAdminClient(**scripted_broker.client(OPS.name))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        yield name
    finally:
        await admin.close()


async def _connects(options: dict[str, Any]) -> bool:
    admin = AIOKafkaAdminClient(**options)
    try:
        await admin.start()
        await admin.describe_cluster()
    except KafkaConnectionError:
        return False
    finally:
        await admin.close()
    return True


@pytest.mark.parametrize("principal", [p.name for p in PRINCIPALS])
async def test_every_principal_connects_with_its_own_password_and_no_other(
    scripted_broker: ScriptedBroker, principal: str
) -> None:
    assert await _connects(scripted_broker.client(principal))
    assert not await _connects(scripted_broker.client(principal, password=new_password()))


async def test_ops_may_write_anywhere(scripted_broker: ScriptedBroker, topic: str) -> None:
    producer = AIOKafkaProducer(**scripted_broker.client(OPS.name))
    await producer.start()
    try:
        written = await producer.send_and_wait(topic, b"by ops")
    finally:
        await producer.stop()
    assert written.offset == 0


async def test_a_principal_no_acl_allows_is_refused(
    scripted_broker: ScriptedBroker, topic: str
) -> None:
    producer = AIOKafkaProducer(**scripted_broker.client("store"))
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(topic, b"by the store")
    finally:
        await producer.stop()
