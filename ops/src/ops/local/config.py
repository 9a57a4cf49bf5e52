"""What the local platform runs where, resolved from the environment once per command.

The contract's settings (`KAFKA_BOOTSTRAP_SERVERS`, `<NAME>_DATABASE_URL`) name servers to
use instead of starting our own. A value equal to the local stack's own address still means
the local stack, so exporting the output of `ops env` does not stop `ops up` from starting it.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.identity import (
    AUTH_AUDIENCE_ENV,
    AUTH_ISSUER_ENV,
    AUTH_JWKS_FILE_ENV,
    AUTH_JWKS_URL_ENV,
    DEFAULT_AUDIENCE,
)
from contracts.services import DEFAULT_POSTGRES_PORT, KAFKA_BOOTSTRAP_ENV, SERVICES, Service
from ops.identity import LOCAL_ISSUER, LocalIdentity
from ops.local.errors import PlatformError
from ops.local.paths import Paths
from ops.local.secrets import PGPASSFILE_ENV, ensure_kafka_credentials
from ops.local.urls import redacted

LOCALHOST = "127.0.0.1"
KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
LOCAL_POSTGRES_PORT_ENV = "LOCAL_POSTGRES_PORT"


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str
    port: int
    controller_port: int
    named_in_env: bool

    @property
    def local_bootstrap(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    @property
    def is_local_address(self) -> bool:
        return self.bootstrap == self.local_bootstrap


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    service: Service
    #: As the service connects: its runtime role.
    url: str
    #: As its owner role reaches it: migrations and rebuilds.
    owner_url: str
    local_url: str
    named_in_env: bool

    @property
    def is_local_address(self) -> bool:
        return self.url == self.local_url


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    service: Service
    http_port: int

    @property
    def base_url(self) -> str:
        return f"http://{LOCALHOST}:{self.http_port}"


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """The identity provider the services trust: the local one (`.local/identity/`) unless
    the environment names a key set of another (`AUTH_JWKS_URL` or `AUTH_JWKS_FILE`)."""

    issuer: str
    audience: str
    jwks_url: str | None
    jwks_file: Path | None
    is_local: bool

    def local_provider(self, paths: Paths) -> LocalIdentity:
        """The local provider, to sign tokens with; refused when the services trust another."""
        if not self.is_local:
            trusted = self.jwks_url or self.jwks_file
            raise PlatformError(
                f"the services trust the identity provider whose keys are at {trusted}, not "
                "the local one: ask that provider for a token"
            )
        return LocalIdentity(paths.identity_dir, issuer=self.issuer, audience=self.audience)

    def exports(self) -> list[tuple[str, str]]:
        """The services' settings naming it."""
        settings = [(AUTH_ISSUER_ENV, self.issuer), (AUTH_AUDIENCE_ENV, self.audience)]
        if self.jwks_url:
            settings.append((AUTH_JWKS_URL_ENV, self.jwks_url))
        if self.jwks_file:
            settings.append((AUTH_JWKS_FILE_ENV, str(self.jwks_file)))
        return settings


@dataclass(frozen=True, slots=True)
class PlatformConfig:
    paths: Paths
    kafka: KafkaSettings
    postgres_port: int
    databases: tuple[DatabaseSettings, ...]
    services: tuple[ServiceSettings, ...]
    identity: IdentitySettings

    @property
    def local_databases(self) -> tuple[DatabaseSettings, ...]:
        return tuple(db for db in self.databases if db.is_local_address)

    @property
    def postgres_named_in_env(self) -> bool:
        return any(db.named_in_env for db in self.local_databases)

    def database_for(self, service: Service) -> DatabaseSettings:
        return next(db for db in self.databases if db.service == service)

    def service_for(self, service: Service) -> ServiceSettings:
        return next(settings for settings in self.services if settings.service == service)


def _port_from(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise PlatformError(f"{name}={value!r} is not a TCP port number")
    return int(value)


def config_from_env(
    env: Mapping[str, str],
    paths: Paths,
    *,
    kafka_port: int = KAFKA_PORT,
    kafka_controller_port: int = KAFKA_CONTROLLER_PORT,
    services: tuple[Service, ...] = SERVICES,
) -> PlatformConfig:
    """The platform as the environment asks for it; the ports are parameters for tests."""
    postgres_port = _port_from(env, LOCAL_POSTGRES_PORT_ENV, DEFAULT_POSTGRES_PORT)
    local_bootstrap = f"{LOCALHOST}:{kafka_port}"
    bootstrap = env.get(KAFKA_BOOTSTRAP_ENV, "").strip()
    kafka = KafkaSettings(
        bootstrap=bootstrap or local_bootstrap,
        port=kafka_port,
        controller_port=kafka_controller_port,
        named_in_env=bool(bootstrap),
    )
    databases = tuple(_database_settings(env, s, postgres_port) for s in services)
    service_settings = tuple(
        ServiceSettings(s, _port_from(env, s.http_port_env, s.port)) for s in services
    )
    identity = _identity_settings(env, paths)
    return PlatformConfig(paths, kafka, postgres_port, databases, service_settings, identity)


def _identity_settings(env: Mapping[str, str], paths: Paths) -> IdentitySettings:
    local_jwks = LocalIdentity(paths.identity_dir).jwks_file
    url = env.get(AUTH_JWKS_URL_ENV, "").strip() or None
    named_file = env.get(AUTH_JWKS_FILE_ENV, "").strip()
    jwks_file = Path(named_file) if named_file else None
    # The local key set named on purpose (`eval "$(ops env)"`) is still the local provider.
    is_local = url is None and (jwks_file is None or jwks_file.resolve() == local_jwks.resolve())
    issuer = env.get(AUTH_ISSUER_ENV, "").strip()
    if not issuer and not is_local:
        raise PlatformError(
            f"{AUTH_JWKS_URL_ENV if url else AUTH_JWKS_FILE_ENV} names an identity provider: "
            f"set {AUTH_ISSUER_ENV} to the issuer of its tokens as well"
        )
    return IdentitySettings(
        issuer=issuer or LOCAL_ISSUER,
        audience=env.get(AUTH_AUDIENCE_ENV, "").strip() or DEFAULT_AUDIENCE,
        jwks_url=url,
        jwks_file=local_jwks if is_local else jwks_file,
        is_local=is_local,
    )


def _database_settings(env: Mapping[str, str], service: Service, port: int) -> DatabaseSettings:
    local_url = service.default_database_url(LOCALHOST, port)
    named = env.get(service.database_url_env, "").strip()
    named_owner = env.get(service.owner_database_url_env, "").strip()
    # A database named without its owner's URL is one role's alone: it migrates itself.
    owner_url = named_owner or (
        named if named else service.default_owner_database_url(LOCALHOST, port)
    )
    return DatabaseSettings(service, named or local_url, owner_url, local_url, bool(named))


class Plan(enum.Enum):
    """What `ops up` does about one server (Kafka, or the PostgreSQL cluster)."""

    REUSE_OURS = "ours, already running"
    START_OURS = "ours, to start"
    USE_EXTERNAL = "external"
    PORT_TAKEN = "port taken by a stranger"


def plan_server(
    *, local_address: bool, named_in_env: bool, ours_running: bool, ports_free: bool
) -> Plan:
    """Decide between our own server and one named in the environment.

    A port held by a process we did not start is only acceptable when the environment named
    that address on purpose: then it is the server the operator wants us to use.
    """
    if not local_address:
        return Plan.USE_EXTERNAL
    if ours_running:
        return Plan.REUSE_OURS
    if ports_free:
        return Plan.START_OURS
    if named_in_env:
        return Plan.USE_EXTERNAL
    return Plan.PORT_TAKEN


def principal_exports(config: PlatformConfig, principal: str) -> list[str]:
    """What a Kafka client needs to connect to the local broker as `principal`."""
    if not config.kafka.is_local_address:
        raise PlatformError(
            f"the broker at {config.kafka.bootstrap} is not ours: its administrators give out "
            "its principals' credentials"
        )
    settings = [(KAFKA_BOOTSTRAP_ENV, config.kafka.bootstrap)]
    settings += ensure_kafka_credentials(config.paths).environment(principal).items()
    return [f"export {name}={shlex.quote(value)}" for name, value in settings]


def environment_exports(config: PlatformConfig) -> list[str]:
    """The settings the services and tests need, as shell `export` lines. Passwords never
    show: a URL given with one is printed with `***`; the local roles' are in the password
    file `PGPASSFILE` names."""
    settings = [(KAFKA_BOOTSTRAP_ENV, config.kafka.bootstrap)]
    for db in config.databases:
        settings += [
            (db.service.database_url_env, redacted(db.url)),
            (db.service.owner_database_url_env, redacted(db.owner_url)),
        ]
    if config.local_databases:
        settings.append((PGPASSFILE_ENV, str(config.paths.pgpass)))
    settings += config.identity.exports()
    return [f"export {name}={shlex.quote(value)}" for name, value in settings]
