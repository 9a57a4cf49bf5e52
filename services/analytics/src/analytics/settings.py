"""Settings of the analytics service (environment prefix `ANALYTICS_`)."""

from __future__ import annotations

from typing import ClassVar

from contracts.services import ANALYTICS, Service
from servicekit.settings import ServiceSettings, settings_config


class Settings(ServiceSettings):
    model_config = settings_config(ANALYTICS)
    service: ClassVar[Service] = ANALYTICS
