"""Settings of the credits service (environment prefix `CREDITS_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import NonNegativeInt, PositiveFloat

from contracts.services import CREDITS, Service
from credits.rules import DEFAULT_LOW_THRESHOLD
from servicekit.settings import ServiceSettings, settings_config


class Settings(ServiceSettings):
    model_config = settings_config(CREDITS)
    service: ClassVar[Service] = CREDITS

    #: Available credits at or below which a client is announced as running low
    #: (`CreditsRunningLow`, once per crossing).
    low_credits_threshold: NonNegativeInt = DEFAULT_LOW_THRESHOLD
    #: How often expiries and "expiring soon" heads-ups are looked for, in seconds.
    clock_interval_seconds: PositiveFloat = 5.0
