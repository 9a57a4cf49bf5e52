from __future__ import annotations

import pytest

from booking.settings import Settings as BookingSettings
from credits.settings import Settings as CreditsSettings


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "CREDITS_DATABASE_URL",
        "CREDITS_OWNER_DATABASE_URL",
        "CREDITS_HTTP_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = CreditsSettings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.http_port == 8003
    # No password: the local one is in the file PGPASSFILE names.
    assert settings.database_url.get_secret_value() == (
        "postgresql+psycopg://credits_runtime@127.0.0.1:5432/credits"
    )
    assert settings.owner_database_url.get_secret_value() == (
        "postgresql+psycopg://credits@127.0.0.1:5432/credits"
    )
    assert settings.consumer_group == "credits"
    assert settings.event_source == "/swanstudios/credits"


def test_each_service_reads_its_own_prefix_and_the_shared_kafka_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:29092")
    monkeypatch.setenv("BOOKING_DATABASE_URL", "postgresql+psycopg://b:b@db:5432/booking")
    monkeypatch.setenv("BOOKING_HTTP_PORT", "9001")
    monkeypatch.setenv("CREDITS_HTTP_PORT", "9003")
    booking = BookingSettings()
    assert booking.kafka_bootstrap_servers == "kafka:29092"
    assert booking.database_url.get_secret_value() == "postgresql+psycopg://b:b@db:5432/booking"
    assert "b:b" not in repr(booking), "the password is never shown"
    assert booking.http_port == 9001
    assert CreditsSettings().http_port == 9003


def test_a_bad_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITS_HTTP_PORT", "not-a-port")
    with pytest.raises(ValueError, match="http_port"):
        CreditsSettings()
