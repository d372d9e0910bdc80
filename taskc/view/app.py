"""The Starlette app: the page (three vendored files), a JSON API, and nothing else.

Every response carries a Content-Security-Policy that allows only this server's own script, style
and images (no inline script, no other host). Errors are JSON `{"error": message}` with a 4xx
status; an unexpected one is a 500 with the exception's type only (its traceback goes to the
terminal), never a traceback in the browser. Requests whose Host header is not this server's
are refused (a page elsewhere cannot reach the viewer through DNS rebinding).
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taskc.view.service import ViewError, Viewer

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}
STATIC_TYPES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
                "index.html": "text/html; charset=utf-8"}


def _static() -> dict[str, bytes]:
    folder = resources.files("taskc.view") / "static"
    return {name: (folder / name).read_bytes() for name in STATIC_TYPES}


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=HEADERS)


def _error(status: int, message: str) -> JSONResponse:
    return _json({"error": message}, status)


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ViewError(400, f"'{name}' must be a whole number, not '{value[:40]}'") from None


def _runs(request: Request) -> list[str]:
    return [v for v in request.query_params.getlist("run") if v]


def create_app(viewer: Viewer, allowed_hosts: list[str] | None = None) -> Starlette:
    """The viewer's ASGI app (`allowed_hosts`: Host header names accepted; None: any)."""
    static = _static()

    def page(_: Request) -> Response:
        return Response(static["index.html"], media_type=STATIC_TYPES["index.html"], headers=HEADERS)

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static or name == "index.html":
            return _error(404, "not found")
        return Response(static[name], media_type=STATIC_TYPES[name], headers=HEADERS)

    def api(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                found = handler(request)
            except ViewError as exc:
                return _error(exc.status, exc.message)
            if isinstance(found, Response):
                return found
            return _json(found)
        return endpoint

    def chart(request: Request) -> Response:
        svg = viewer.chart(request.query_params.get("group", ""))
        return Response(svg, media_type="image/svg+xml", headers=HEADERS)

    def group(request: Request) -> str:
        return request.query_params.get("group", "")

    routes = [
        Route("/", page),
        Route("/static/{name}", asset),
        Route("/favicon.ico", lambda r: Response(status_code=204, headers=HEADERS)),
        Route("/api/index", api(lambda r: viewer.index())),
        Route("/api/chart", api(chart)),
        Route("/api/compare", api(lambda r: viewer.compare(
            group(r), _runs(r), [f for f in r.query_params.getlist("filter") if f], r.query_params.get("q", ""),
            _int(r, "page", 0), _int(r, "size", 50)))),
        Route("/api/sample", api(lambda r: viewer.sample(group(r), _runs(r), r.query_params.get("row", "")))),
        Route("/api/messages", api(lambda r: viewer.messages(group(r), _runs(r), r.query_params.get("row", "")))),
        Route("/api/sql", api(lambda r: viewer.sql(group(r), _runs(r), r.query_params.get("row", "")))),
        Route("/api/kind", api(lambda r: viewer.kind_view(group(r), _runs(r)))),
    ]

    async def not_found(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, "not found" if exc.status_code == 404 else str(exc.detail))

    async def crashed(request: Request, exc: Exception) -> Response:  # uvicorn logs the traceback
        return _error(500, f"internal error ({type(exc).__name__}); the terminal running taskc view has the details")

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: not_found, Exception: crashed})
