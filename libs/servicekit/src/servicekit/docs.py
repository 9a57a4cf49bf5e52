"""`/docs`: Swagger UI from the service itself, never from a CDN.

FastAPI's own `/docs` page loads Swagger UI's script and stylesheet from jsdelivr and its
favicon from fastapi.tiangolo.com, so the page is blank wherever those are out of reach
(and every visit tells them about it). The services serve the pinned `swagger-ui-dist`
files vendored in `servicekit/static/swagger/` (see the README there) under
`/static/swagger/` and build the same page around them. ReDoc, which would load from a CDN
too, is not served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
SWAGGER_ASSETS = Path(__file__).parent / "static" / "swagger"
SWAGGER_PATH = "/static/swagger"
DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"


def serve_docs(app: FastAPI) -> None:
    """Serve `/docs` (and its OAuth2 redirect page) on assets of the app's own. The app is
    made with `docs_url=None` and `redoc_url=None`; `/openapi.json` stays FastAPI's."""
    app.mount(SWAGGER_PATH, StaticFiles(directory=SWAGGER_ASSETS), name="swagger-ui")
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_js_url=f"{SWAGGER_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_PATH}/favicon-32x32.png",
            # No badge asking validator.swagger.io about the document.
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        OAUTH2_REDIRECT_PATH, oauth2_redirect, methods=["GET"], include_in_schema=False
    )
