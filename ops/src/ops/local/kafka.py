"""Apache Kafka as one local JVM: jars from Maven Central, single-node KRaft on 127.0.0.1.

There is no Kafka package on the machines and no Docker engine, so the broker's jars come
from Maven Central (infra/kafka/pom.xml) into `.local/kafka/libs`, and `kafka.Kafka` runs
straight from that classpath.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from contracts.principals import OPS, PRINCIPALS, SASL_MECHANISM
from ops.local import errors
from ops.local.config import LOCALHOST, KafkaSettings, Plan, PlatformConfig, plan_server
from ops.local.files import write_atomically
from ops.local.paths import Paths
from ops.local.processes import (
    ProcessSpec,
    describe_listener,
    port_accepts,
    port_is_free,
    running_pid,
    start_detached,
    stop,
    write_pid,
)
from ops.local.report import Say
from ops.local.secrets import CONTROLLER_USER, KafkaCredentials, ensure_kafka_credentials
from servicekit.kafka import client_options

#: The official image docker-compose.yml and the tests' testcontainers path run (with
#: infra/docker/kafka-start.sh): the Kafka version infra/kafka/pom.xml pins for `make up`.
KAFKA_IMAGE = "apache/kafka:4.1.1"
BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
#: Plenty for tests on a 2-core machine, and leaves room for four services beside it.
JVM_HEAP = ("-Xms256m", "-Xmx512m")
MINIMUM_JAVA = 17
MAVEN_TIMEOUT = 900.0
FORMAT_TIMEOUT = 120.0
READY_TIMEOUT = 120.0
EXTERNAL_READY_TIMEOUT = 30.0
STOP_GRACE = 30.0


# --- configuration ------------------------------------------------------------------------


def render_server_properties(
    *, port: int, controller_port: int, data_dir: Path, credentials: KafkaCredentials
) -> str:
    """server.properties of a single-node KRaft cluster, broker and controller in one JVM,
    that authenticates every client and lets each do only what its ACLs allow.

    The clients' listener takes SCRAM-SHA-512 (the principals' credentials live in the
    cluster's metadata, written when the storage is formatted); the controller keeps a
    listener of its own with SASL PLAIN for its one static user, since SCRAM credentials
    are not readable before the metadata is. `ops` is the super user, and what the broker
    itself connects as."""
    ops, controller = credentials.passwords[OPS.name], credentials.passwords[CONTROLLER_USER]
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A dynamic quorum formatted with --standalone: it must not also name static voters.
        "controller.quorum.bootstrap.servers": f"{LOCALHOST}:{controller_port}",
        "listeners": f"CLIENT://{LOCALHOST}:{port},CONTROLLER://{LOCALHOST}:{controller_port}",
        "advertised.listeners": f"CLIENT://{LOCALHOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "CLIENT",
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT",
        "listener.name.client.sasl.enabled.mechanisms": SASL_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SASL_MECHANISM,
        "listener.name.client.scram-sha-512.sasl.jaas.config": (
            f'{scram} required username="{OPS.name}" password="{ops}";'
        ),
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            f'{plain} required username="{CONTROLLER_USER}" password="{controller}" '
            f'user_{CONTROLLER_USER}="{controller}";'
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{OPS.name};User:{CONTROLLER_USER}",
        "log.dirs": str(data_dir),
        # One broker: the internal topics cannot have more than one replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        # Tests start consumer groups all the time; waiting 3 s for more members is waste.
        "group.initial.rebalance.delay.ms": "0",
        # A broker started again after a crash is fenced until its last session expires (9 s
        # by default, counted from the controller's start): one node on one machine does
        # not need that much grace.
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "4000",
        # Topics come from contracts.topics with their settings; a typo must not create one.
        "auto.create.topics.enable": "false",
    }
    lines = ["# Written by `ops up` (ops/src/ops/local/kafka.py); edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def write_server_properties(
    paths: Paths, settings: KafkaSettings, credentials: KafkaCredentials
) -> None:
    """Readable by its owner alone: it holds the broker's own passwords."""
    text = render_server_properties(
        port=settings.port,
        controller_port=settings.controller_port,
        data_dir=paths.kafka_data,
        credentials=credentials,
    )
    paths.kafka_dir.mkdir(parents=True, exist_ok=True)
    if not paths.kafka_properties.exists() or paths.kafka_properties.read_text() != text:
        write_atomically(paths.kafka_properties, text.encode(), mode=0o600)


# --- jars ---------------------------------------------------------------------------------


def pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_are_cached(paths: Paths) -> bool:
    """Whether `.local/kafka/libs` holds a complete download for the current POM.

    The stamp is written last, so an interrupted download never counts; keying it on the
    POM's hash makes a changed POM (another Kafka version) fetch again.
    """
    stamp = paths.kafka_libs_stamp
    return stamp.is_file() and stamp.read_text().strip() == pom_digest(paths.kafka_pom)


def fetch_jars(paths: Paths, say: Say) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise errors.maven_missing()
    say("Kafka: fetching the broker's jars from Maven Central (once)")
    # Download beside the cache and swap it in whole, so stale jars of another version never
    # end up on the classpath and a failed download leaves the old cache as it was.
    partial = paths.kafka_libs.with_name("libs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    log = paths.log("mvn")
    maven = [mvn, "-q", "-B", f"-Dmaven.repo.local={paths.maven_repository}"]
    copy = [
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
    ]
    command = [*maven, "-f", str(paths.kafka_pom), *copy]
    with log.open("wb") as output:
        try:
            result = subprocess.run(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=MAVEN_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise errors.step_timed_out("fetching the Kafka jars", MAVEN_TIMEOUT, log) from None
    if result.returncode != 0 or not any(partial.glob("kafka_*.jar")):
        raise errors.step_failed("fetching the Kafka jars (mvn)", log)
    (partial / paths.kafka_libs_stamp.name).write_text(pom_digest(paths.kafka_pom) + "\n")
    shutil.rmtree(paths.kafka_libs, ignore_errors=True)
    partial.rename(paths.kafka_libs)


def ensure_jars(paths: Paths, say: Say) -> None:
    if not jars_are_cached(paths):
        paths.kafka_dir.mkdir(parents=True, exist_ok=True)
        fetch_jars(paths, say)


# --- java ---------------------------------------------------------------------------------


def java_major_version(version_output: str) -> int | None:
    """17 from `openjdk version "17.0.15" ...`; 8 from the old `"1.8.0_392"` scheme."""
    found = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if found is None:
        return None
    major = int(found.group(1))
    if major == 1 and found.group(2):
        return int(found.group(2))
    return major


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise errors.java_missing()
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    output = result.stderr + result.stdout
    major = java_major_version(output)
    if major is not None and major < MINIMUM_JAVA:
        raise errors.java_too_old(str(major))
    return java


def jvm_command(paths: Paths, java: str, main: str, *arguments: str) -> list[str]:
    """`main` may also be `@file`: a Java argument file naming the class and its arguments."""
    return [
        java,
        *JVM_HEAP,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={paths.log4j_config}",
        "-cp",
        f"{paths.kafka_libs}/*",
        main,
        *arguments,
    ]


# --- storage and process ------------------------------------------------------------------


def is_formatted(paths: Paths) -> bool:
    return (paths.kafka_data / "meta.properties").is_file()


def is_secured(paths: Paths) -> bool:
    """Formatted with the principals' credentials: a storage formatted before the broker
    authenticated its clients has none, and no client could ever connect to it."""
    return is_formatted(paths) and paths.kafka_secured_stamp.is_file()


def new_cluster_id() -> str:
    """A cluster id as Kafka writes them: 16 random bytes, URL-safe base64, unpadded.

    Kafka never hands out ids that start with '-' (they read as command-line flags).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def format_storage(paths: Paths, java: str, credentials: KafkaCredentials, say: Say) -> None:
    say("Kafka: formatting its storage (once), with its principals' credentials")
    log = paths.log("kafka")
    scram = [
        argument
        for principal in PRINCIPALS
        for argument in (
            "--add-scram",
            f"{SASL_MECHANISM}=[name={principal.name},"
            f"password={credentials.passwords[principal.name]}]",
        )
    ]
    cluster = ["-t", new_cluster_id(), "-c", str(paths.kafka_properties)]
    tool = [STORAGE_TOOL_MAIN, "format", "--standalone", *cluster, *scram]
    # The passwords go in a Java argument file (readable by its owner alone, deleted after),
    # not on the command line, which any local user can read while the tool runs.
    arguments = paths.secrets_dir / "kafka-format.args"
    write_atomically(arguments, "\n".join(f'"{a}"' for a in tool).encode(), mode=0o600)
    command = jvm_command(paths, java, f"@{arguments}")
    with log.open("ab") as output:
        try:
            result = subprocess.run(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=FORMAT_TIMEOUT,
                cwd=paths.root,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise errors.step_timed_out("Kafka storage format", FORMAT_TIMEOUT, log) from None
        finally:
            arguments.unlink(missing_ok=True)
    if result.returncode != 0:
        raise errors.step_failed("Kafka storage format", log)
    paths.kafka_secured_stamp.write_text(SASL_MECHANISM + "\n")


def process_spec(paths: Paths) -> ProcessSpec:
    return ProcessSpec(
        name="kafka",
        pid_file=paths.pid_file("kafka"),
        signature=(BROKER_MAIN, str(paths.kafka_properties)),
        cwd=paths.root,
    )


def start_broker(paths: Paths, java: str) -> int:
    command = jvm_command(paths, java, BROKER_MAIN, str(paths.kafka_properties))
    pid = start_detached(command, log=paths.log("kafka"), cwd=paths.root)
    write_pid(paths.pid_file("kafka"), pid)
    return pid


def prepare_and_start(paths: Paths, settings: KafkaSettings, say: Say) -> int:
    """Everything blocking before the broker runs: jars, config, format, launch."""
    java = find_java()
    paths.ensure_runtime_dirs()
    ensure_jars(paths, say)
    credentials = ensure_kafka_credentials(paths)
    write_server_properties(paths, settings, credentials)
    if is_formatted(paths) and not is_secured(paths):
        say(
            "Kafka: its storage predates authentication, so no client could connect to it: "
            "formatting it again (its topics start empty; once)"
        )
        shutil.rmtree(paths.kafka_data)
    if not is_formatted(paths):
        format_storage(paths, java, credentials, say)
    return start_broker(paths, java)


# --- readiness ----------------------------------------------------------------------------


async def broker_count(bootstrap: str, timeout_ms: int = 5000) -> int:
    """Brokers listed by a metadata request; 0 when the cluster does not answer."""
    admin = AIOKafkaAdminClient(
        **client_options(), bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return len(cluster["brokers"])
    except (TimeoutError, KafkaError, OSError):
        return 0
    finally:
        await admin.close()


async def wait_until_ready(
    settings: KafkaSettings, log: Path, process: ProcessSpec | None, within: float
) -> None:
    """Ready means the port accepts and a metadata request lists a broker, not a log line."""
    deadline = time.monotonic() + within
    while True:
        if process is not None and running_pid(process) is None:
            raise errors.process_exited("Kafka", log)
        port_open = not settings.is_local_address or port_accepts(settings.port)
        if port_open and await broker_count(settings.bootstrap) > 0:
            return
        if time.monotonic() > deadline:
            raise errors.step_timed_out(f"Kafka readiness at {settings.bootstrap}", within, log)
        await asyncio.sleep(0.5)


# --- up and down --------------------------------------------------------------------------


async def ensure_kafka(config: PlatformConfig, say: Say) -> None:
    """Start our broker unless it runs already or the environment names another one."""
    settings, paths = config.kafka, config.paths
    spec = process_spec(paths)
    busy = [p for p in (settings.port, settings.controller_port) if not port_is_free(p)]
    plan = plan_server(
        local_address=settings.is_local_address,
        named_in_env=settings.named_in_env,
        ours_running=running_pid(spec) is not None,
        ports_free=not busy,
    )
    log = paths.log("kafka")
    if plan is Plan.PORT_TAKEN:
        raise errors.port_taken(busy[0], "Kafka", describe_listener(busy[0]))
    if plan is Plan.USE_EXTERNAL:
        say(f"Kafka: using {settings.bootstrap} from KAFKA_BOOTSTRAP_SERVERS")
        try:
            await wait_until_ready(settings, log, None, EXTERNAL_READY_TIMEOUT)
        except errors.PlatformError:
            raise errors.PlatformError(
                f"Kafka at {settings.bootstrap} (KAFKA_BOOTSTRAP_SERVERS) does not answer "
                "a metadata request: start it, or unset KAFKA_BOOTSTRAP_SERVERS to use ours"
            ) from None
        return
    if plan is Plan.REUSE_OURS:
        say(f"Kafka: already running (pid {running_pid(spec)})")
    else:
        pid = await asyncio.to_thread(prepare_and_start, paths, settings, say)
        say(f"Kafka: started (pid {pid}), waiting until it answers")
    await wait_until_ready(settings, log, spec, READY_TIMEOUT)


def stop_kafka(paths: Paths) -> int | None:
    # A controlled shutdown of a single node takes a few seconds; past the grace it is killed,
    # which KRaft recovers from on the next start.
    return stop(process_spec(paths), STOP_GRACE)
