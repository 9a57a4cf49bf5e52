"""docker-compose.yml, its init scripts and the services' Dockerfiles agree with the code.

Nothing here needs Docker: the files are read as text and checked against the contract
(`contracts.services`, `contracts.topics`) and each service's `Settings`, so that a renamed
setting, a new topic or a moved port fails here rather than on a laptop that runs Docker.
"""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url

from contracts.identity import AUTH_ISSUER_ENV, AUTH_JWKS_FILE_ENV
from contracts.principals import OPS, PRINCIPALS, SASL_MECHANISM
from contracts.services import (
    DEFAULT_KAFKA_BOOTSTRAP,
    DEFAULT_POSTGRES_PORT,
    KAFKA_BOOTSTRAP_ENV,
    KAFKA_SASL_MECHANISM_ENV,
    KAFKA_SASL_PASSWORD_ENV,
    KAFKA_SASL_USERNAME_ENV,
    KAFKA_SECURITY_PROTOCOL_ENV,
    SERVICES,
    Service,
)
from contracts.topics import ALL_TOPICS
from ops.identity import LOCAL_ISSUER, LocalIdentity
from ops.kafka_access import Acl, Operation, PatternType, ResourceType, platform_acls
from ops.local.kafka import KAFKA_IMAGE
from ops.local.paths import Paths

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
POSTGRES_INIT_SCRIPT = ROOT / "infra" / "docker" / "postgres-init.sh"
ENV_EXAMPLE = ROOT / ".env.example"
KAFKA_START_SCRIPT = ROOT / "infra" / "docker" / "kafka-start.sh"
KAFKA_SETUP_SCRIPT = ROOT / "infra" / "docker" / "kafka-setup.sh"

#: The compose services that are not platform services, by the name the services use.
KAFKA = "kafka"
POSTGRES = "postgres"
KAFKA_SETUP = "kafka-setup"
#: The broker's controller authenticates with a password of its own, beside the principals'.
CONTROLLER = "controller"
#: Where the postgres image listens, keeps its data and runs its init scripts from.
POSTGRES_PORT = 5432
POSTGRES_DATA = "/var/lib/postgresql/data"
POSTGRES_INIT_DIRECTORY = "/docker-entrypoint-initdb.d/"
#: In a container the service must listen on every interface to be reachable at all.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
#: Compose publishes every port on the host's loopback interface only: the credentials are
#: local development ones. Inside a container, probes reach the service the same way.
LOOPBACK = "127.0.0.1"

each_service = pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])


# --- reading the files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def containers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compose's `services`, called containers here to keep them apart from the platform's."""
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's settings as compose gives them when no variable is set: each
    `${NAME:-default}` read as its default."""
    return {
        name: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        for name, value in container.get("environment", {}).items()
    }


def env_example() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def published_ports(container: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port -> (host interface, host port), from `ports` in the short syntax."""
    published = {}
    for entry in container.get("ports", []):
        interface, host_port, container_port = str(entry).rsplit(":", 2)
        published[int(container_port)] = (interface, int(host_port))
    return published


def advertised_listeners(kafka: dict[str, Any]) -> dict[str, str]:
    """Listener name -> the address the broker tells its clients to connect to."""
    listeners = environment(kafka)["KAFKA_ADVERTISED_LISTENERS"].split(",")
    return dict(listener.split("://", 1) for listener in listeners)


def volume_mounts(container: dict[str, Any]) -> dict[str, str]:
    """Path in the container -> the named volume or host path mounted there."""
    mounts = {}
    for entry in container.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        mounts[target] = source
    return mounts


def healthcheck_command(container: dict[str, Any]) -> str:
    return " ".join(container.get("healthcheck", {}).get("test", []))


def settings_environment_names(service: Service) -> set[str]:
    """The environment variables the service's Settings read: its prefix and the field's
    name, or the field's own alias (the shared, unprefixed `KAFKA_BOOTSTRAP_SERVERS`)."""
    settings: type[BaseSettings] = importlib.import_module(f"{service.name}.settings").Settings
    return environment_names(settings)


def environment_names(settings: type[BaseSettings]) -> set[str]:
    """Those of a group of settings read as one (the Kafka principal's) included."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            names |= environment_names(field.annotation)
            continue
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else prefix + field_name)
    return {name.upper() for name in names}


def password_variable(principal: str) -> str:
    return f"KAFKA_{principal.upper()}_PASSWORD"


def dockerfile(service: Service) -> Path:
    return ROOT / "services" / service.name / "Dockerfile"


def dockerfile_instructions(service: Service) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined."""
    text = dockerfile(service).read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def dockerfile_environment(service: Service) -> dict[str, str]:
    variables: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions(service):
        if keyword == "ENV":
            for assignment in shlex.split(arguments):
                name, _, value = assignment.partition("=")
                variables[name] = value
    return variables


def find(instructions: list[tuple[str, str]], keyword: str, *words: str) -> int | None:
    """Index of the first `keyword` instruction whose arguments contain all of `words`."""
    for index, (found, arguments) in enumerate(instructions):
        if found == keyword and all(word in arguments for word in words):
            return index
    return None


def position(instructions: list[tuple[str, str]], keyword: str, *words: str) -> int:
    index = find(instructions, keyword, *words)
    assert index is not None, f"no {keyword} instruction with {words}"
    return index


def workspace_member_directories() -> list[str]:
    """The workspace members of the root pyproject, globs expanded, relative to the root."""
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    return sorted(
        path.parent.relative_to(ROOT).as_posix()
        for pattern in members["members"]
        for path in ROOT.glob(f"{pattern}/pyproject.toml")
    )


# --- the platform services in compose --------------------------------------------------------


@each_service
def test_service_is_in_compose_and_publishes_its_contract_port(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    assert service.name in containers
    assert published_ports(containers[service.name]) == {service.port: (LOOPBACK, service.port)}


@each_service
def test_service_uses_its_own_database_as_its_runtime_role_and_migrates_as_its_owner(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    settings = environment(containers[service.name])
    runtime, owner = (
        make_url(settings[service.database_url_env]),
        make_url(settings[service.owner_database_url_env]),
    )
    postgres = environment(containers[POSTGRES])
    name = service.name.upper()
    assert (runtime.username, runtime.password) == (
        service.runtime_role,
        postgres[f"{name}_RUNTIME_PASSWORD"],
    )
    assert (owner.username, owner.password) == (
        service.owner_role,
        postgres[f"{name}_OWNER_PASSWORD"],
    )
    for url in (runtime, owner):
        assert (url.host, url.port, url.database) == (POSTGRES, POSTGRES_PORT, service.database)
    assert containers[POSTGRES]["image"].startswith("postgres:")


def test_every_password_variable_has_its_default_in_the_env_example(
    containers: dict[str, dict[str, Any]],
) -> None:
    raw = COMPOSE_FILE.read_text()
    defaults = dict(re.findall(r"\$\{(\w+):-([^}]*)\}", raw))
    assert defaults == env_example()
    assert "/.env" in (ROOT / ".gitignore").read_text().split()


@each_service
def test_service_reaches_kafka_at_the_address_the_broker_advertises_to_containers(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    bootstrap = environment(containers[service.name])[KAFKA_BOOTSTRAP_ENV]
    assert bootstrap in advertised_listeners(containers[KAFKA]).values()
    assert bootstrap.split(":")[0] == KAFKA


@each_service
def test_compose_sets_only_real_settings_of_the_service(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    unknown = set(environment(containers[service.name])) - settings_environment_names(service)
    assert not unknown, f"{service.name} has no settings named {sorted(unknown)}"


@each_service
def test_service_trusts_the_local_identity_provider(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    """The key set `make up` (or `ops token`) makes on the host, read-only in the container,
    so that `uv run ops token` gives tokens the containers accept."""
    settings = environment(containers[service.name])
    identity = LocalIdentity(Paths(ROOT).identity_dir)
    assert settings[AUTH_ISSUER_ENV] == LOCAL_ISSUER
    jwks = PurePosixPath(settings[AUTH_JWKS_FILE_ENV])
    mounted = volume_mounts(containers[service.name])[str(jwks.parent)]
    assert (ROOT / mounted).resolve() / jwks.name == identity.jwks_file
    assert str(containers[service.name]["volumes"][0]).endswith(":ro")


@each_service
def test_service_starts_after_postgres_is_healthy_and_the_topics_exist(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    depends_on = containers[service.name]["depends_on"]
    assert depends_on[POSTGRES]["condition"] == "service_healthy"
    assert depends_on[KAFKA_SETUP]["condition"] == "service_completed_successfully"


@each_service
def test_service_is_healthy_only_when_ready(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    probe = f"http://{LOOPBACK}:{service.port}/health/ready"
    assert probe in healthcheck_command(containers[service.name])


@each_service
def test_service_is_built_from_its_dockerfile_with_the_repository_root_as_context(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    build = containers[service.name]["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    assert ROOT / build["dockerfile"] == dockerfile(service)
    assert dockerfile(service).is_file()


# --- Kafka, PostgreSQL and the topics in compose --------------------------------------------


def test_every_long_running_container_has_a_healthcheck(
    containers: dict[str, dict[str, Any]],
) -> None:
    long_running = set(containers) - {KAFKA_SETUP}
    assert {name for name in long_running if healthcheck_command(containers[name])} == (
        long_running
    )


def test_the_host_reaches_kafka_and_postgres_at_the_settings_defaults(
    containers: dict[str, dict[str, Any]],
) -> None:
    kafka_host, kafka_port = DEFAULT_KAFKA_BOOTSTRAP.split(":")
    assert DEFAULT_KAFKA_BOOTSTRAP in advertised_listeners(containers[KAFKA]).values()
    assert published_ports(containers[KAFKA])[int(kafka_port)] == (kafka_host, int(kafka_port))
    assert published_ports(containers[POSTGRES])[POSTGRES_PORT] == (LOOPBACK, DEFAULT_POSTGRES_PORT)


def test_kafka_and_postgres_keep_their_data_in_named_volumes(
    compose: dict[str, Any], containers: dict[str, dict[str, Any]]
) -> None:
    kafka_data = environment(containers[KAFKA])["KAFKA_LOG_DIRS"]
    assert volume_mounts(containers[KAFKA])[kafka_data] in compose["volumes"]
    assert volume_mounts(containers[POSTGRES])[POSTGRES_DATA] in compose["volumes"]


def test_postgres_runs_the_init_script_on_first_start(
    containers: dict[str, dict[str, Any]],
) -> None:
    mounts = volume_mounts(containers[POSTGRES])
    init_scripts = [
        ROOT / src for dst, src in mounts.items() if dst.startswith(POSTGRES_INIT_DIRECTORY)
    ]
    assert init_scripts == [POSTGRES_INIT_SCRIPT]


def test_kafka_setup_runs_its_script_against_the_broker_once_it_is_healthy_as_ops(
    containers: dict[str, dict[str, Any]],
) -> None:
    setup = containers[KAFKA_SETUP]
    script_in_container = next(
        dst for dst, src in volume_mounts(setup).items() if ROOT / src == KAFKA_SETUP_SCRIPT
    )
    assert setup["entrypoint"][-1] == script_in_container
    assert setup["image"] == containers[KAFKA]["image"]
    assert setup["depends_on"][KAFKA]["condition"] == "service_healthy"
    bootstrap = environment(setup)[KAFKA_BOOTSTRAP_ENV]
    assert bootstrap in advertised_listeners(containers[KAFKA]).values()
    variable = password_variable(OPS.name)
    assert environment(setup)[variable] == environment(containers[KAFKA])[variable]


def test_compose_testcontainers_and_make_up_run_the_same_kafka(
    containers: dict[str, dict[str, Any]],
) -> None:
    """The tests' testcontainers path runs KAFKA_IMAGE with the same start script."""
    assert containers[KAFKA]["image"] == KAFKA_IMAGE
    pinned = re.search(r"<kafka.version>(.+)</kafka.version>", Paths(ROOT).kafka_pom.read_text())
    assert pinned is not None
    assert f"apache/kafka:{pinned.group(1)}" == KAFKA_IMAGE


def test_kafka_runs_the_start_script_with_a_password_for_every_principal(
    containers: dict[str, dict[str, Any]],
) -> None:
    kafka = containers[KAFKA]
    script_in_container = next(
        dst for dst, src in volume_mounts(kafka).items() if ROOT / src == KAFKA_START_SCRIPT
    )
    assert kafka["entrypoint"][-1] == script_in_container
    passwords = {
        name: value for name, value in environment(kafka).items() if name.endswith("_PASSWORD")
    }
    expected = {password_variable(p.name) for p in PRINCIPALS} | {password_variable(CONTROLLER)}
    assert set(passwords) == expected
    assert len(set(passwords.values())) == len(passwords), "each principal has its own"


def test_kafka_start_script_gives_every_principal_a_credential_and_ops_every_right() -> None:
    script = KAFKA_START_SCRIPT.read_text()
    listed = re.search(r'^principals="([^"]*)"$', script, re.MULTILINE)
    assert listed is not None
    assert listed.group(1).split() == [p.name for p in PRINCIPALS]
    assert f"mechanism={SASL_MECHANISM}" in script.splitlines()
    assert "allow.everyone.if.no.acl.found=false" in script.splitlines()
    assert f"super.users=User:{OPS.name};User:{CONTROLLER}" in script.splitlines()
    # Every listener authenticates: none is PLAINTEXT.
    protocols = re.search(r"^listener\.security\.protocol\.map=(.*)$", script, re.MULTILINE)
    assert protocols is not None
    assert {entry.split(":")[1] for entry in protocols.group(1).split(",")} == {"SASL_PLAINTEXT"}


@each_service
def test_service_connects_to_kafka_as_its_own_principal(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    settings = environment(containers[service.name])
    assert settings[KAFKA_SECURITY_PROTOCOL_ENV] == "SASL_PLAINTEXT"
    assert settings[KAFKA_SASL_MECHANISM_ENV] == SASL_MECHANISM
    assert settings[KAFKA_SASL_USERNAME_ENV] == service.name
    broker_side = environment(containers[KAFKA])[password_variable(service.name)]
    assert settings[KAFKA_SASL_PASSWORD_ENV] == broker_side


# --- the init scripts -------------------------------------------------------------------------


@each_service
def test_postgres_init_script_sets_up_each_services_roles_and_database(
    service: Service, containers: dict[str, dict[str, Any]]
) -> None:
    script = POSTGRES_INIT_SCRIPT.read_text()
    name = service.name.upper()
    call = f'setup_service {service.name} "${name}_OWNER_PASSWORD" "${name}_RUNTIME_PASSWORD"'
    assert call in script.splitlines()
    # The variables reach the container that runs it.
    assert {f"{name}_OWNER_PASSWORD", f"{name}_RUNTIME_PASSWORD"} <= set(
        environment(containers[POSTGRES])
    )
    # The role names follow the contract's: the service's name, and it with `_runtime`.
    assert service.owner_role == service.name
    assert service.runtime_role == f"{service.name}_runtime"


def test_postgres_init_script_closes_each_database_to_other_roles() -> None:
    statements = [
        line
        for line in POSTGRES_INIT_SCRIPT.read_text().splitlines()
        if line.endswith(";") and not line.startswith("#")
    ]
    assert statements == [
        """CREATE ROLE :"name" LOGIN CREATEDB NOCREATEROLE PASSWORD :'owner_password';""",
        """CREATE ROLE :"runtime" LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'runtime_password';""",
        """CREATE DATABASE :"name" OWNER :"name";""",
        """REVOKE CONNECT, TEMPORARY ON DATABASE :"name" FROM PUBLIC;""",
        """GRANT CONNECT ON DATABASE :"name" TO :"runtime";""",
    ]


def test_topic_script_creates_exactly_all_topics_with_their_partitions_and_config() -> None:
    created = []
    for line in KAFKA_SETUP_SCRIPT.read_text().splitlines():
        if line.startswith("create_topic "):
            name, partitions, *settings = shlex.split(line)[1:]
            created.append((name, int(partitions), sorted(settings)))
    expected = [
        (topic.name, topic.partitions, sorted(f"{k}={v}" for k, v in topic.config.items()))
        for topic in ALL_TOPICS
    ]
    assert sorted(created) == sorted(expected)


def test_setup_script_grants_exactly_the_contracts_acls() -> None:
    granted = set()
    for line in KAFKA_SETUP_SCRIPT.read_text().splitlines():
        if line.startswith("allow "):
            principal, operation, resource_type, pattern_type, *names = shlex.split(line)[1:]
            granted |= {
                Acl(
                    ResourceType[resource_type.upper()],
                    name,
                    PatternType[pattern_type.upper()],
                    principal,
                    Operation[operation.upper()],
                )
                for name in names
            }
    assert granted == set(platform_acls())


def test_setup_script_leaves_what_exists_alone_and_stops_at_the_first_failure() -> None:
    script = KAFKA_SETUP_SCRIPT.read_text().replace("\\\n", " ")
    assert re.search(r"kafka-topics\.sh .*--create --if-not-exists", script)
    # The services start only when the script succeeds, so a failure must be its exit code.
    assert re.search(r"^set -\w*e", script, re.MULTILINE)


# --- the Dockerfiles --------------------------------------------------------------------------


@each_service
def test_dockerfile_installs_the_locked_dependencies_first_then_the_service_package(
    service: Service,
) -> None:
    instructions = dockerfile_instructions(service)
    package = f"--package {service.name}"
    dependencies = position(instructions, "RUN", "uv sync --frozen --no-install-workspace", package)
    sources = position(instructions, "COPY", f"services/{service.name} services/{service.name}")
    everything = position(instructions, "RUN", "uv sync --frozen", package, "--no-editable")
    assert dependencies < sources < everything
    assert "--no-dev" in instructions[dependencies][1]
    assert "--no-dev" in instructions[everything][1]


@each_service
def test_dockerfile_gives_uv_every_workspace_members_pyproject_before_installing(
    service: Service,
) -> None:
    instructions = dockerfile_instructions(service)
    first_sync = position(instructions, "RUN", "uv sync")
    copied = {
        arguments.split()[0]
        for keyword, arguments in instructions[:first_sync]
        if keyword == "COPY"
    }
    for member in workspace_member_directories():
        assert f"{member}/pyproject.toml" in copied


@each_service
def test_dockerfile_serves_on_all_interfaces_on_the_contract_port(service: Service) -> None:
    variables = dockerfile_environment(service)
    host_setting = service.env_prefix + "HTTP_HOST"
    assert variables[host_setting] == ALL_INTERFACES
    assert variables[service.http_port_env] == str(service.port)
    assert {host_setting, service.http_port_env} <= settings_environment_names(service)
    assert ("EXPOSE", str(service.port)) in dockerfile_instructions(service)


@each_service
def test_dockerfile_migrates_the_database_then_runs_the_service(service: Service) -> None:
    alembic_ini = f"services/{service.name}/alembic.ini"
    assert (ROOT / alembic_ini).is_file()
    instructions = dockerfile_instructions(service)
    assert find(instructions, "COPY", alembic_ini) is not None
    assert find(instructions, "COPY", f"services/{service.name}/migrations") is not None
    command = position(instructions, "CMD", f"alembic -c {alembic_ini} upgrade head")
    assert f"upgrade head && exec python -m {service.name}" in instructions[command][1]


@each_service
def test_dockerfile_health_checks_liveness_on_the_port_it_serves(service: Service) -> None:
    healthcheck = find(
        dockerfile_instructions(service),
        "HEALTHCHECK",
        f"http://{LOOPBACK}:",
        f"os.environ['{service.http_port_env}']",
        "/health/live",
    )
    assert healthcheck is not None


@each_service
def test_dockerfile_runs_the_service_as_a_non_root_user(service: Service) -> None:
    users = [
        arguments for keyword, arguments in dockerfile_instructions(service) if keyword == "USER"
    ]
    assert users
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
