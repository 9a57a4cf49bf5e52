"""The platform's services as the contract names them: name, HTTP port, database, settings."""

from __future__ import annotations

from dataclasses import dataclass

KAFKA_BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
#: How a client authenticates to the brokers (the contract's "Identity and access (Kafka)").
KAFKA_SECURITY_PROTOCOL_ENV = "KAFKA_SECURITY_PROTOCOL"
KAFKA_SASL_MECHANISM_ENV = "KAFKA_SASL_MECHANISM"
KAFKA_SASL_USERNAME_ENV = "KAFKA_SASL_USERNAME"
KAFKA_SASL_PASSWORD_ENV = "KAFKA_SASL_PASSWORD"  # noqa: S105 - the setting's name, not a secret
KAFKA_SSL_CAFILE_ENV = "KAFKA_SSL_CAFILE"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_POSTGRES_PORT = 5432


@dataclass(frozen=True, slots=True)
class Service:
    """One service: a Python package that runs with `python -m <name>` and owns one database."""

    name: str
    port: int

    @property
    def env_prefix(self) -> str:
        return self.name.upper() + "_"

    @property
    def database_url_env(self) -> str:
        """The setting naming this service's database (`BOOKING_DATABASE_URL`, ...), as the
        service connects to it: with its runtime role."""
        return self.env_prefix + "DATABASE_URL"

    @property
    def owner_database_url_env(self) -> str:
        """The same database as its owner role sees it, for migrations and rebuilds."""
        return self.env_prefix + "OWNER_DATABASE_URL"

    @property
    def http_port_env(self) -> str:
        return self.env_prefix + "HTTP_PORT"

    @property
    def event_source(self) -> str:
        """The CloudEvents `source` of everything this service publishes."""
        return f"/swanstudios/{self.name}"

    @property
    def database(self) -> str:
        """Database name, and the name of the role that owns it."""
        return self.name

    @property
    def owner_role(self) -> str:
        """Owns the database and its tables: migrations and rebuilds run as it."""
        return self.name

    @property
    def runtime_role(self) -> str:
        """What the running service connects as: its tables' rows, no DDL."""
        return f"{self.name}_runtime"

    def consumer_group(self, topic_prefix: str = "") -> str:
        """The one consumer group the service reads its inputs in, unless configured
        otherwise: its name behind the topic prefix, so isolated copies never share one."""
        return topic_prefix + self.name

    def default_database_url(
        self, host: str = "127.0.0.1", port: int = DEFAULT_POSTGRES_PORT
    ) -> str:
        """The database as the runtime role reaches it. No password: libpq reads it from
        `PGPASSFILE` (locally, the file `make up` writes), unless a setting names one."""
        return f"postgresql+psycopg://{self.runtime_role}@{host}:{port}/{self.database}"

    def default_owner_database_url(
        self, host: str = "127.0.0.1", port: int = DEFAULT_POSTGRES_PORT
    ) -> str:
        return f"postgresql+psycopg://{self.owner_role}@{host}:{port}/{self.database}"


BOOKING = Service("booking", 8001)
WORKOUTS = Service("workouts", 8002)
CREDITS = Service("credits", 8003)
ANALYTICS = Service("analytics", 8004)

SERVICES: tuple[Service, ...] = (BOOKING, WORKOUTS, CREDITS, ANALYTICS)


def service_named(name: str) -> Service:
    for service in SERVICES:
        if service.name == name:
            return service
    names = ", ".join(s.name for s in SERVICES)
    raise KeyError(f"unknown service {name!r}; expected one of {names}")
