"""Readiness is open to anyone: it names what is down, never how to reach it or why."""

from __future__ import annotations

from typing import ClassVar

from httpx import ASGITransport, AsyncClient

from contracts.services import CREDITS, Service
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_config


class ProbeSettings(ServiceSettings):
    model_config = settings_config(CREDITS)
    service: ClassVar[Service] = CREDITS


async def test_readiness_names_what_is_down_and_nothing_about_it() -> None:
    secret = "s3cret-Passw0rd"
    settings = ProbeSettings(
        database_url=f"postgresql+psycopg://credits_role:{secret}@127.0.0.1:1/ledger_db",
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    runtime = ServiceRuntime(settings)
    app = runtime.create_app(title="Probe")
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://probe") as http:
            response = await http.get("/health/ready")
    finally:
        await runtime.database.dispose()

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"database": "unavailable", "kafka": "unavailable", "identity": "ok"},
    }
    for leak in (secret, "credits_role", "ledger_db", "127.0.0.1", "Error"):
        assert leak not in response.text
