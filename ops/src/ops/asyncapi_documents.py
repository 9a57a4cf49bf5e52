"""Each service's AsyncAPI document as a file, `contracts/asyncapi/<service>.asyncapi.json`,
so that a team producing or consuming the platform's events can read it without running
anything.

    uv run python -m ops.asyncapi_documents            # write them (part of `make schemas`)
    uv run python -m ops.asyncapi_documents --check    # exit 1 when the files are stale

Each file is what the service serves at `/asyncapi.json` (`servicekit.asyncapi`), taken from
its app as the service builds it. The contract cannot build them itself (it imports no
service), so they are written from here. The settings that reach the document are fixed, not
read from the environment, so the files are the same on every machine: no topic prefix, and
the contract's default broker address (the local platform's) as the document's server.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from contracts.generated import GeneratedFiles, stable_json
from contracts.services import DEFAULT_KAFKA_BOOTSTRAP, SERVICES, Service
from servicekit.kafka import KafkaSecurity

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[3] / "contracts" / "asyncapi"
SUFFIX = ".asyncapi.json"


def file_name(service: Service) -> str:
    return service.name + SUFFIX


def service_app(service: Service) -> FastAPI:
    """The service's app as it runs, with settings that do not depend on the machine.
    Nothing connects: the app is never started."""
    settings_type = importlib.import_module(f"{service.name}.settings").Settings
    settings = settings_type(
        kafka_bootstrap_servers=DEFAULT_KAFKA_BOOTSTRAP,
        kafka_topic_prefix="",
        # Its defaults (PLAINTEXT), not the environment's principal: the document names none.
        kafka_security=KafkaSecurity.model_construct(),
        consumer_group="",
        # Required to build the app, never used: no request is verified here.
        auth_issuer="https://identity.invalid",
        auth_jwks_url=None,
        auth_jwks_file=Path("jwks.json"),
    )
    app: FastAPI = importlib.import_module(f"{service.name}.main").create_app(settings)
    return app


async def _served(app: FastAPI) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            response = await http.get("/asyncapi.json")
            response.raise_for_status()
            document: dict[str, Any] = json.loads(response.content)
            return document
    finally:
        await app.state.runtime.database.dispose()


def service_document(service: Service) -> dict[str, Any]:
    """The AsyncAPI document `service` serves."""
    return asyncio.run(_served(service_app(service)))


def rendered_documents() -> dict[str, str]:
    """File name -> file text, for every service."""
    return {file_name(service): stable_json(service_document(service)) for service in SERVICES}


ASYNCAPI_FILES = GeneratedFiles(
    "AsyncAPI documents", DEFAULT_DIRECTORY, "*" + SUFFIX, rendered_documents
)


if __name__ == "__main__":
    raise SystemExit(ASYNCAPI_FILES.main(description=__doc__.splitlines()[0] if __doc__ else None))
