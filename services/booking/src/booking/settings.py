"""Settings of the booking service (environment prefix `BOOKING_`, but for the studio's
cancellation policy: `STUDIO_LATE_CANCEL_HOURS`, `STUDIO_NO_SHOW_FORFEITS`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from contracts.events import MAX_LATE_CANCEL_HOURS, CancellationPolicy
from contracts.services import BOOKING, Service
from servicekit.settings import ServiceSettings, settings_config

LATE_CANCEL_ENV = "STUDIO_LATE_CANCEL_HOURS"
NO_SHOW_ENV = "STUDIO_NO_SHOW_FORFEITS"


class Settings(ServiceSettings):
    model_config = settings_config(BOOKING)
    service: ClassVar[Service] = BOOKING

    #: A cancellation this many hours or fewer before the session forfeits its credit
    #: (0: never). Stamped on each booking the API makes, so a change applies to later ones.
    #: The studio's, not booking's own: named without the prefix.
    studio_late_cancel_hours: int = Field(
        default=0, ge=0, le=MAX_LATE_CANCEL_HOURS, validation_alias=LATE_CANCEL_ENV
    )
    #: Whether a no-show forfeits the session's credit.
    studio_no_show_forfeits: bool = Field(default=False, validation_alias=NO_SHOW_ENV)

    def cancellation_policy(self) -> CancellationPolicy | None:
        """The studio's policy as bookings carry it; None when it forfeits nothing."""
        policy = CancellationPolicy(
            late_cancel_hours=self.studio_late_cancel_hours,
            no_show_forfeits=self.studio_no_show_forfeits,
        )
        return policy if policy.forfeits_anything else None
