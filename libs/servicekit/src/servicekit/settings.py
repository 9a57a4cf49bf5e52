"""Settings every service reads from its environment.

Each service subclasses `ServiceSettings`, naming its `Service` from the contract; its settings
then carry that service's prefix (`BOOKING_DATABASE_URL`, `BOOKING_HTTP_PORT`, ...) and
defaults, while the Kafka servers keep the contract's shared, unprefixed name. Nothing is
read at import time: a service builds its settings when it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, PositiveFloat, PositiveInt, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.identity import (
    AUTH_AUDIENCE_ENV,
    AUTH_ISSUER_ENV,
    AUTH_JWKS_FILE_ENV,
    AUTH_JWKS_URL_ENV,
    AUTH_ROLES_CLAIM_ENV,
    DEFAULT_AUDIENCE,
    ROLES_CLAIM,
)
from contracts.services import DEFAULT_KAFKA_BOOTSTRAP, KAFKA_BOOTSTRAP_ENV, Service
from servicekit.kafka import KafkaSecurity

#: The most events one transaction takes: the records a consumer applies, the outbox rows the
#: relay publishes. Large enough that a backlog goes at set-wise speed (the credits consumer
#: applies about 40 times as many sessions a second in batches of 500 as one record at a time:
#: docs/benchmarks.md), small enough that a batch's rows stay small beside the interpreter
#: (docs/benchmarks.md, Memory); the relay publishes in one round what a full batch of its
#: service's consumer announces.
BATCH_SIZE = 500


def settings_config(service: Service) -> SettingsConfigDict:
    """The settings config of one service: its own environment prefix."""
    return SettingsConfigDict(env_prefix=service.env_prefix, extra="ignore", frozen=True)


class ServiceSettings(BaseSettings):
    service: ClassVar[Service]

    kafka_bootstrap_servers: str = Field(
        default=DEFAULT_KAFKA_BOOTSTRAP, validation_alias=KAFKA_BOOTSTRAP_ENV
    )
    #: Prepended to every topic name. Empty in production; tests run whole isolated copies
    #: of the platform on one broker by giving each its own prefix. Shared by all services.
    kafka_topic_prefix: str = Field(default="", validation_alias="KAFKA_TOPIC_PREFIX")
    #: Its Kafka principal (`KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_USERNAME`, ...).
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    #: As the service connects: its runtime role. Secret: it may hold a password.
    database_url: SecretStr
    #: As its owner role reaches it, for migrations (alembic) and nothing else.
    owner_database_url: SecretStr
    http_host: str = "127.0.0.1"
    http_port: PositiveInt
    #: A request body larger than this is refused (413) before it is read.
    http_max_body_bytes: PositiveInt = 1024 * 1024
    #: Connections per process: enough for requests, consumers and the outbox relay on a
    #: 2-core box, without exhausting PostgreSQL when several replicas run.
    database_pool_size: PositiveInt = 10
    #: Seconds a request waits for a connection of the pool before it is answered 503.
    database_pool_timeout: PositiveFloat = 5.0
    #: Seconds an outbox event the broker refused for good (too large for its topic) is set
    #: aside before it is tried again (`servicekit.outbox`).
    outbox_refused_retry_seconds: PositiveFloat = 300.0
    log_level: str = "INFO"
    #: The most records one consumer transaction applies (see `servicekit.consumer`).
    consumer_batch_size: PositiveInt = BATCH_SIZE
    #: One consumer group per service, named after it (behind the topic prefix, if any)
    #: unless told otherwise.
    consumer_group: str = ""
    #: Who may call the API (docs/security.md): tokens must come from this issuer, for this
    #: audience, signed with a key of the JWKS at this URL or in this file. Shared by all
    #: services, and required: a service never starts without a way to check its callers.
    auth_issuer: str = Field(min_length=1, validation_alias=AUTH_ISSUER_ENV)
    auth_audience: str = Field(
        default=DEFAULT_AUDIENCE, min_length=1, validation_alias=AUTH_AUDIENCE_ENV
    )
    auth_jwks_url: str | None = Field(default=None, validation_alias=AUTH_JWKS_URL_ENV)
    auth_jwks_file: Path | None = Field(default=None, validation_alias=AUTH_JWKS_FILE_ENV)
    #: Where the token keeps its roles, dotted for a nested claim (`realm_access.roles`).
    auth_roles_claim: str = Field(default=ROLES_CLAIM, validation_alias=AUTH_ROLES_CLAIM_ENV)

    @model_validator(mode="before")
    @classmethod
    def _service_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data.setdefault("database_url", cls.service.default_database_url())
            data.setdefault("owner_database_url", cls.service.default_owner_database_url())
            data.setdefault("http_port", cls.service.port)
            if not data.get("consumer_group"):
                prefix = data.get("kafka_topic_prefix") or data.get("KAFKA_TOPIC_PREFIX") or ""
                data["consumer_group"] = cls.service.consumer_group(prefix)
        return data

    @model_validator(mode="after")
    def _one_key_set(self) -> Self:
        if (self.auth_jwks_url is None) == (self.auth_jwks_file is None):
            raise ValueError(
                f"set exactly one of {AUTH_JWKS_URL_ENV} (the identity provider's JWKS "
                f"address) and {AUTH_JWKS_FILE_ENV} (a JWKS file)"
            )
        return self

    @property
    def service_name(self) -> str:
        return self.service.name

    @property
    def event_source(self) -> str:
        """The CloudEvents `source` of everything this service publishes."""
        return self.service.event_source
