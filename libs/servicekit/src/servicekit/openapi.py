"""What every route of a service's own may answer besides its own responses, declared on
each route so that its OpenAPI document gives every status a caller can get."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.routing import APIRoute

#: Answered to a request whose body cannot be read at all (bytes that are not UTF-8).
UNREADABLE_BODY = {"description": "The body cannot be read: it is not UTF-8 JSON"}
#: Answered by `servicekit.http.BodySizeLimit` before the body is read.
BODY_TOO_LARGE = {"description": "The body is larger than the service takes (1 MiB unless set)"}
#: Answered when the identity provider's keys or the database cannot be reached.
UNAVAILABLE = {
    "description": "The identity provider's keys or the database are unavailable: try again"
    " after `Retry-After` seconds"
}


def declare_shared_responses(router: APIRouter) -> None:
    """Declare on every route of `router` that it may be unavailable, and on those taking a
    body what may refuse the body before the route sees it."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        declared: dict[int | str, Any] = route.responses
        declared.setdefault(status.HTTP_503_SERVICE_UNAVAILABLE, UNAVAILABLE)
        if route.body_field is not None:
            declared.setdefault(status.HTTP_400_BAD_REQUEST, UNREADABLE_BODY)
            declared.setdefault(status.HTTP_413_CONTENT_TOO_LARGE, BODY_TOO_LARGE)
