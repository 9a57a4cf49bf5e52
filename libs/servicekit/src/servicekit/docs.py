"""`/docs` (Swagger UI) and the `/asyncapi` page from the service itself, never from a CDN.

FastAPI's own `/docs` page loads Swagger UI's script and stylesheet from jsdelivr and its
favicon from fastapi.tiangolo.com, and FastStream's AsyncAPI page loads from unpkg and
asyncapi.com, so both are blank wherever those are out of reach (and every visit tells them
about it). The services serve the pinned files vendored in `servicekit/static/swagger/` and
`servicekit/static/asyncapi/` (see the README in each) and build the same pages around
them. ReDoc, which would load from a CDN too, is not served.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_ASSETS = Path(__file__).parent / "static"
SWAGGER_UI_VERSION = "5.35.0"
SWAGGER_ASSETS = STATIC_ASSETS / "swagger"
SWAGGER_PATH = "/static/swagger"
ASYNCAPI_COMPONENT_VERSION = "3.1.5"
ASYNCAPI_ASSETS = STATIC_ASSETS / "asyncapi"
ASYNCAPI_PATH = "/static/asyncapi"
DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"


def serve_docs(app: FastAPI) -> None:
    """Serve `/docs` (and its OAuth2 redirect page) on assets of the app's own. The app is
    made with `docs_url=None` and `redoc_url=None`; `/openapi.json` stays FastAPI's."""
    app.mount(SWAGGER_PATH, StaticFiles(directory=SWAGGER_ASSETS), name="swagger-ui")
    app.mount(ASYNCAPI_PATH, StaticFiles(directory=ASYNCAPI_ASSETS), name="asyncapi-ui")
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


def asyncapi_page(title: str, document_json: str) -> str:
    """The page rendering an AsyncAPI document with the vendored web component (the
    standalone bundle, which parses the document in the browser)."""
    settings = {
        "schema": document_json,
        "config": {
            "show": dict.fromkeys(
                ("sidebar", "info", "servers", "operations", "messages", "schemas", "errors"),
                True,
            ),
            "expand": {"messageExamples": True},
            "sidebar": {"showServers": "byDefault", "showOperations": "byDefault"},
        },
    }
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_escape_text(title)} - AsyncAPI</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{ASYNCAPI_PATH}/default.min.css">
<style>html {{ font-family: system-ui, sans-serif; line-height: 1.5; }}</style>
</head>
<body>
<div id="asyncapi"></div>
<script src="{ASYNCAPI_PATH}/asyncapi-standalone.js"></script>
<script>
window.AsyncApiStandalone.render({_script_json(settings)}, document.getElementById("asyncapi"));
</script>
</body>
</html>"""


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element: a description holding `</script>` or `<!--`
    cannot end the element early."""
    return json.dumps(value).replace("<", "\\u003c")  # ASCII only: U+2028 comes escaped
