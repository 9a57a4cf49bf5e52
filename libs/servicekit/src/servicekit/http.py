"""HTTP behaviour every service shares."""

from __future__ import annotations

import math

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


async def refuse_invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, safe for every input. Python's JSON parser accepts `NaN` and `Infinity`,
    and FastAPI's own handler echoes them back in `input`, which no JSON can hold: the reply
    would be a 500. They are echoed as the strings the client wrote instead."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": _json_safe(jsonable_encoder(error.errors()))},
    )


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value
