"""Settings every service reads from its environment.

Each service subclasses `ServiceSettings`, naming its `Service` from the contract; its settings
then carry that service's prefix (`BOOKING_DATABASE_URL`, `BOOKING_HTTP_PORT`, ...) and
defaults, while the Kafka servers keep the contract's shared, unprefixed name. Nothing is
read at import time: a service builds its settings when it starts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, PositiveInt, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.services import DEFAULT_KAFKA_BOOTSTRAP, KAFKA_BOOTSTRAP_ENV, Service


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
    database_url: str
    http_host: str = "127.0.0.1"
    http_port: PositiveInt
    #: Connections per process: enough for requests, consumers and the outbox relay on a
    #: 2-core box, without exhausting PostgreSQL when several replicas run.
    database_pool_size: PositiveInt = 10
    log_level: str = "INFO"
    #: The most records one consumer transaction applies (see `servicekit.consumer`).
    consumer_batch_size: PositiveInt = 500
    #: One consumer group per service, named after it (behind the topic prefix, if any)
    #: unless told otherwise.
    consumer_group: str = ""

    @model_validator(mode="before")
    @classmethod
    def _service_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data.setdefault("database_url", cls.service.default_database_url())
            data.setdefault("http_port", cls.service.port)
            if not data.get("consumer_group"):
                # Namespaced with the topics, so isolated copies never share a group.
                prefix = data.get("kafka_topic_prefix") or data.get("KAFKA_TOPIC_PREFIX") or ""
                data["consumer_group"] = prefix + cls.service.name
        return data

    @property
    def service_name(self) -> str:
        return self.service.name

    @property
    def event_source(self) -> str:
        """The CloudEvents `source` of everything this service publishes."""
        return f"/swanstudios/{self.service.name}"
