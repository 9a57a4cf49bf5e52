"""Settings of the analytics service (environment prefix `ANALYTICS_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import PositiveFloat

from contracts.services import ANALYTICS, Service
from servicekit.settings import ServiceSettings, settings_config


class Settings(ServiceSettings):
    model_config = settings_config(ANALYTICS)
    service: ClassVar[Service] = ANALYTICS

    #: A usage stream reads the usage again this often even when no notification said it
    #: changed (`analytics.stream`): what a lost notification can cost, at most.
    usage_stream_reread_seconds: PositiveFloat = 10.0
