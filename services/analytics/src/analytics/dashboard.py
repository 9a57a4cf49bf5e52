"""The web dashboard, `GET /dashboard`: a static page and its script and style sheet, served
from this package (`analytics/dashboard/`), nothing from anywhere else.

The page holds no data: its script reads the bearer token from the URL's fragment
(`/dashboard#token=…`, never the query string, which logs keep), and calls this service's
JSON API with it (`Authorization: Bearer`), so every figure it shows passes the API's own
access check. The page and its files answer without a token (like `/docs`); the headers
forbid the page to load or send anything anywhere but here (Content-Security-Policy) and
its address to be sent on (Referrer-Policy).
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

#: The page's files and their content types.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
#: Only this service's own files and API: no inline script, nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    " img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def asset(name: str) -> bytes:
    """One of the page's files, as shipped in the package."""
    return (resources.files("analytics") / "dashboard" / name).read_bytes()


def _answer(name: str) -> Response:
    return Response(asset(name), media_type=ASSETS[name], headers=HEADERS)


@router.get("/dashboard")
async def get_dashboard() -> Response:
    return _answer("index.html")


@router.get("/dashboard/{name}")
async def get_dashboard_asset(name: str) -> Response:
    if name == "index.html" or name not in ASSETS:
        raise HTTPException(status_code=404, detail="Not Found")
    return _answer(name)
