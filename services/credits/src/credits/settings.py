"""Settings of the credits service (environment prefix `CREDITS_`)."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat

from contracts.services import CREDITS, Service
from credits.rules import DEFAULT_LOW_THRESHOLD, EXPIRY_GRACE
from credits.store import LedgerStore
from servicekit.consumer import IdempotentConsumer
from servicekit.outbox import Outbox
from servicekit.settings import ServiceSettings, settings_config


class Settings(ServiceSettings):
    model_config = settings_config(CREDITS)
    service: ClassVar[Service] = CREDITS

    #: Available credits at or below which a client is announced as running low
    #: (`CreditsRunningLow`, once per crossing).
    low_credits_threshold: NonNegativeInt = DEFAULT_LOW_THRESHOLD
    #: How long after its end a package still pays for sessions delivered before the end
    #: whose events arrive late; then what is left of it expires.
    expiry_grace_hours: NonNegativeFloat = EXPIRY_GRACE / timedelta(hours=1)
    #: How often expiries and "expiring soon" heads-ups are looked for, in seconds.
    clock_interval_seconds: PositiveFloat = 5.0

    @property
    def expiry_grace(self) -> timedelta:
        return timedelta(hours=self.expiry_grace_hours)

    def ledger_store(self, outbox: Outbox, consumer: IdempotentConsumer) -> LedgerStore:
        """The ledger as these settings keep it: for the consumer, the API and the clock."""
        return LedgerStore(outbox, consumer, self.low_credits_threshold, self.expiry_grace)
