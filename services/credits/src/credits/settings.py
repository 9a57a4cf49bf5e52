"""Settings of the credits service (environment prefix `CREDITS_`)."""

from __future__ import annotations

from typing import ClassVar

from contracts.services import CREDITS, Service
from servicekit.settings import ServiceSettings, settings_config


class Settings(ServiceSettings):
    model_config = settings_config(CREDITS)
    service: ClassVar[Service] = CREDITS
