"""Settings of the booking service (environment prefix `BOOKING_`)."""

from __future__ import annotations

from typing import ClassVar

from contracts.services import BOOKING, Service
from servicekit.settings import ServiceSettings, settings_config


class Settings(ServiceSettings):
    model_config = settings_config(BOOKING)
    service: ClassVar[Service] = BOOKING
