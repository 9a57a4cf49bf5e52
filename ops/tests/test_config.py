"""Which servers `ops up` starts and which it only uses, as the environment says."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.local.config import Plan, config_from_env, environment_exports, plan_server
from ops.local.errors import PlatformError
from ops.local.paths import Paths

PATHS = Paths(Path("/repo"))


def test_an_empty_environment_means_the_whole_local_stack() -> None:
    config = config_from_env({}, PATHS)

    assert config.kafka.bootstrap == "127.0.0.1:9092"
    assert config.kafka.is_local_address
    assert not config.kafka.named_in_env
    assert config.postgres_port == 5432
    assert [db.service.name for db in config.local_databases] == [
        "booking",
        "workouts",
        "credits",
        "analytics",
    ]
    # No passwords in URLs: the local ones are in the file PGPASSFILE names.
    assert config.databases[0].url == (
        "postgresql+psycopg://booking_runtime@127.0.0.1:5432/booking"
    )
    assert config.databases[0].owner_url == "postgresql+psycopg://booking@127.0.0.1:5432/booking"
    assert [s.http_port for s in config.services] == [8001, 8002, 8003, 8004]


def test_servers_named_in_the_environment_are_external() -> None:
    config = config_from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092",
            "CREDITS_DATABASE_URL": "postgresql+psycopg://c:c@db.example:5432/credits",
        },
        PATHS,
    )

    assert not config.kafka.is_local_address
    assert [db.service.name for db in config.local_databases] == [
        "booking",
        "workouts",
        "analytics",
    ]
    assert config.database_for(config.databases[2].service).url.startswith(
        "postgresql+psycopg://c:c@db.example"
    )


def test_the_local_stacks_own_addresses_in_the_environment_still_mean_the_local_stack() -> None:
    # What `eval "$(ops env)"` exports must not stop `ops up` from starting the stack.
    config = config_from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
            "BOOKING_DATABASE_URL": "postgresql+psycopg://booking_runtime@127.0.0.1:5432/booking",
            "BOOKING_OWNER_DATABASE_URL": "postgresql+psycopg://booking@127.0.0.1:5432/booking",
        },
        PATHS,
    )

    assert config.kafka.is_local_address
    assert config.kafka.named_in_env
    assert len(config.local_databases) == 4
    assert config.postgres_named_in_env


def test_local_postgres_port_moves_every_local_database_url() -> None:
    config = config_from_env({"LOCAL_POSTGRES_PORT": "55432", "BOOKING_HTTP_PORT": "9001"}, PATHS)

    assert config.postgres_port == 55432
    assert all(":55432/" in db.url for db in config.databases)
    assert config.services[0].base_url == "http://127.0.0.1:9001"


def test_a_port_setting_that_is_not_a_port_is_refused_with_its_name() -> None:
    with pytest.raises(PlatformError, match=r"LOCAL_POSTGRES_PORT='five' is not a TCP port"):
        config_from_env({"LOCAL_POSTGRES_PORT": "five"}, PATHS)


@pytest.mark.parametrize(
    ("local_address", "named_in_env", "ours_running", "ports_free", "plan"),
    [
        (False, True, False, True, Plan.USE_EXTERNAL),
        (True, False, True, False, Plan.REUSE_OURS),
        (True, True, True, False, Plan.REUSE_OURS),
        (True, False, False, True, Plan.START_OURS),
        (True, True, False, True, Plan.START_OURS),
        (True, True, False, False, Plan.USE_EXTERNAL),
        (True, False, False, False, Plan.PORT_TAKEN),
    ],
)
def test_plan_server(
    local_address: bool, named_in_env: bool, ours_running: bool, ports_free: bool, plan: Plan
) -> None:
    decided = plan_server(
        local_address=local_address,
        named_in_env=named_in_env,
        ours_running=ours_running,
        ports_free=ports_free,
    )

    assert decided is plan


def test_env_exports_every_setting_of_the_contract_quoted_for_the_shell() -> None:
    lines = environment_exports(config_from_env({"LOCAL_POSTGRES_PORT": "5433"}, PATHS))

    assert lines == [
        "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092",
        *(
            line
            for name in ("booking", "workouts", "credits", "analytics")
            for line in (
                f"export {name.upper()}_DATABASE_URL="
                f"postgresql+psycopg://{name}_runtime@127.0.0.1:5433/{name}",
                f"export {name.upper()}_OWNER_DATABASE_URL="
                f"postgresql+psycopg://{name}@127.0.0.1:5433/{name}",
            )
        ),
        "export PGPASSFILE=/repo/.local/secrets/pgpass",
        "export AUTH_ISSUER=urn:training-platform:local-identity",
        "export AUTH_AUDIENCE=training-platform",
        "export AUTH_JWKS_FILE=/repo/.local/identity/jwks.json",
    ]


def test_the_local_identity_provider_unless_the_environment_names_another() -> None:
    local = config_from_env({}, PATHS).identity
    named_local = config_from_env({"AUTH_JWKS_FILE": "/repo/.local/identity/jwks.json"}, PATHS)
    external = config_from_env(
        {"AUTH_JWKS_URL": "https://id.example/jwks", "AUTH_ISSUER": "https://id.example"}, PATHS
    ).identity

    assert local.is_local
    assert local.jwks_file == Path("/repo/.local/identity/jwks.json")
    assert named_local.identity == local
    assert not external.is_local
    assert external.exports() == [
        ("AUTH_ISSUER", "https://id.example"),
        ("AUTH_AUDIENCE", "training-platform"),
        ("AUTH_JWKS_URL", "https://id.example/jwks"),
    ]
    with pytest.raises(PlatformError, match="not the local one"):
        external.local_provider(PATHS)


def test_another_identity_provider_needs_its_issuer() -> None:
    with pytest.raises(PlatformError, match="set AUTH_ISSUER"):
        config_from_env({"AUTH_JWKS_FILE": "/elsewhere/jwks.json"}, PATHS)
