"""Settings of the workouts service (environment prefix `WORKOUTS_`)."""

from __future__ import annotations

from typing import ClassVar

from contracts.services import WORKOUTS, Service
from servicekit.settings import ServiceSettings, settings_config


class Settings(ServiceSettings):
    model_config = settings_config(WORKOUTS)
    service: ClassVar[Service] = WORKOUTS
