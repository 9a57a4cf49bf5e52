"""Kafka clients: how they authenticate (the contract's client settings), and the producer
every service publishes with, configured for no loss and no reorder."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

from aiokafka import AIOKafkaProducer
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.services import (
    KAFKA_SASL_MECHANISM_ENV,
    KAFKA_SASL_PASSWORD_ENV,
    KAFKA_SASL_USERNAME_ENV,
    KAFKA_SECURITY_PROTOCOL_ENV,
    KAFKA_SSL_CAFILE_ENV,
)
from contracts.topics import DEAD_LETTER_MAX_BYTES

Headers = Sequence[tuple[str, bytes]]
SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]


class KafkaSecurity(BaseSettings):
    """Who a Kafka client is to the brokers, from the environment's contract settings
    (unprefixed: one process, one principal). PLAINTEXT when none is set: a broker that
    authenticates refuses such a client, which then says so."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", validation_alias=KAFKA_SECURITY_PROTOCOL_ENV
    )
    sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512", validation_alias=KAFKA_SASL_MECHANISM_ENV
    )
    sasl_username: str | None = Field(default=None, validation_alias=KAFKA_SASL_USERNAME_ENV)
    sasl_password: SecretStr | None = Field(default=None, validation_alias=KAFKA_SASL_PASSWORD_ENV)
    #: The certificate authorities a SASL_SSL client trusts (the system's when unset).
    ssl_cafile: Path | None = Field(default=None, validation_alias=KAFKA_SSL_CAFILE_ENV)

    @model_validator(mode="after")
    def _sasl_names_its_principal(self) -> Self:
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"{KAFKA_SECURITY_PROTOCOL_ENV}={self.security_protocol} needs "
                f"{KAFKA_SASL_USERNAME_ENV} and {KAFKA_SASL_PASSWORD_ENV}"
            )
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol != "PLAINTEXT"

    @property
    def principal(self) -> str | None:
        return self.sasl_username if self.uses_sasl else None

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments of an aiokafka client (producer, consumer, admin)."""
        if not self.uses_sasl:
            return {}
        assert self.sasl_password is not None  # by validation
        options: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": self.sasl_password.get_secret_value(),
        }
        if self.security_protocol == "SASL_SSL":
            options["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return options

    def faststream_security(self) -> BaseSecurity | None:
        """The same for FastStream's broker."""
        if not self.uses_sasl:
            return None
        assert self.sasl_username is not None
        assert self.sasl_password is not None  # by validation
        kind = SASLScram512 if self.sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
        use_ssl = self.security_protocol == "SASL_SSL"
        return kind(
            username=self.sasl_username,
            password=self.sasl_password.get_secret_value(),
            use_ssl=use_ssl,
            ssl_context=create_ssl_context(cafile=self.ssl_cafile) if use_ssl else None,
        )


def client_options() -> dict[str, Any]:
    """The aiokafka keyword arguments of this process's principal, from its environment:
    for the tools (ops, the tests, the benchmarks); a service reads its settings instead."""
    return KafkaSecurity().aiokafka_options()


class Producer:
    """An idempotent producer: every write acknowledged by all in-sync replicas, retried
    without duplicates and without reordering within a partition (aiokafka defaults to
    acks=1 without idempotence, so both are set here on purpose).

    The aiokafka client is made in `start`, because it must be made inside a running event
    loop; the object itself can be built and handed around before that."""

    def __init__(
        self, bootstrap_servers: str, *, client_id: str, security: KafkaSecurity | None = None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.security = security or KafkaSecurity()
        self._client: AIOKafkaProducer | None = None

    async def start(self) -> None:
        client = AIOKafkaProducer(
            **self.security.aiokafka_options(),
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            # No linger: the relay hands over a whole batch of rows before it awaits any, so
            # records share requests anyway, and a lone event is not held back. No
            # compression either: small JSON records on a broker next door gain nothing
            # worth the CPU (docs/benchmarks.md).
            linger_ms=0,
            # A dead letter is the largest record its topic takes plus the reason: the
            # `.dlq` twins take up to this much (the broker refuses more on other topics).
            max_request_size=DEAD_LETTER_MAX_BYTES,
        )
        try:
            await client.start()
        except BaseException:
            await client.stop()
            raise
        self._client = client

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.stop()
            self._client = None

    @property
    def client(self) -> AIOKafkaProducer:
        if self._client is None:
            raise RuntimeError("the Kafka producer is not started")
        return self._client

    async def send(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: Headers,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        """Queue a record; the returned future resolves once the broker has it."""
        future: asyncio.Future[Any] = await self.client.send(
            topic, value=value, key=key, headers=list(headers), partition=partition
        )
        return future

    async def send_and_wait(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: Headers,
        partition: int | None = None,
    ) -> None:
        await (await self.send(topic, value=value, key=key, headers=headers, partition=partition))
