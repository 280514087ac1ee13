"""Error responses: JSON ``{"error": {"code", "message"}}`` for the API, pages in the layout otherwise.

An anonymous visitor of a page is sent to the login page instead of a bare 401. An
unexpected exception is logged with its traceback and answered with a plain 500 that
reveals nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from litestar import Request, Response
from litestar.enums import MediaType
from litestar.exceptions import (HTTPException, NotAuthorizedException, NotFoundException, PermissionDeniedException,
                                 ValidationException)
from litestar.response import Redirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from optria.web import i18n
from optria.web.templating import render

log = logging.getLogger("optria.web.errors")

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
         429: "too_many_requests", 500: "internal_error", 503: "unavailable"}


class RedirectPages(PermissionDeniedException):
    """A refusal that a page answers by sending the browser to ``location`` (a step the user must take
    first, such as choosing a new password); the API still answers 403 with the error body."""

    location = "/"


class ApiError(HTTPException):
    """An error with an explicit machine code, raised by routes for 4xx answers."""

    def __init__(self, status_code: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail=message, status_code=status_code, extra=extra)
        self.code = code


def wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/internal/")) or path in ("/api", "/metrics"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def json_error(status: int, code: str, message: str, extra: Any = None) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if extra:
        body["error"]["details"] = extra
    return Response(content=body, status_code=status, media_type=MediaType.JSON)


PAGE_TITLES = {
    403: ("Access denied", "Your role does not allow this page. Ask your administrator for access."),
    404: ("Page not found", "The page or item you asked for does not exist, or is not in your organization."),
    405: ("Not allowed", "This action is not available here."),
    409: ("Conflict", "The request conflicts with the stored data or its rules. Check the values and try again."),
    422: ("Invalid input", "Some of the values sent are not valid. Check the form and try again."),
    400: ("Invalid request", "The request could not be understood. Check the values and try again."),
    500: ("Something went wrong", "An unexpected error happened. It has been logged; try again in a moment."),
}
INVALID_VALUE = ("A value sent is not valid here: a number out of range, or text with a character no field "
                 "accepts (such as NUL). Check the values and try again.")
NUL_IN_REQUEST = "The request contains a NUL character (%00), which no field accepts. Remove it and try again."


class BadCharacters(ApiError):
    """A NUL byte in the path or query string: refused before any handler sees it."""

    def __init__(self) -> None:
        super().__init__(400, "invalid_characters", NUL_IN_REQUEST)


def error_page(request: Request, status: int, message: str | None = None) -> Response:
    title, default_message = PAGE_TITLES.get(status, PAGE_TITLES[400 if status < 500 else 500])
    try:
        return render(request, "error.html", status_code=status, status=status, title=i18n.gettext(title),
                      message=i18n.gettext(message or default_message))
    except Exception:  # the error page itself must never fail
        log.exception("web.error_page_failed")
        return Response(content=f"Error {status}", status_code=status, media_type=MediaType.TEXT)


def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        status = 422 if request.method != "GET" or wants_json(request) else 400
    if isinstance(exc, RedirectPages) and not wants_json(request):
        return Redirect(exc.location)
    if isinstance(exc, NotAuthorizedException) and not wants_json(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import quote

        return Redirect(f"/login?next={quote(target, safe='')}")
    code = getattr(exc, "code", None) or CODES.get(status, "error")
    message = str(exc.detail) if exc.detail else PAGE_TITLES.get(status, ("", "Error"))[1]
    if wants_json(request):
        extra = exc.extra if isinstance(exc, (ValidationException, ApiError)) else None
        if isinstance(exc, ValidationException):
            message = "Some of the values sent are not valid."
        return json_error(status, code, message, extra)
    if isinstance(exc, BadCharacters):
        log.info("web.invalid_characters", extra={"path": request.url.path.replace("\x00", "\\0")})
    page_message = message if isinstance(exc, ApiError) else None
    if isinstance(exc, NotFoundException) and "Not Found" in message:
        page_message = None
    return error_page(request, status, page_message)


def data_error_handler(request: Request, exc: psycopg.DataError) -> Response:
    """A value the database refuses as data (SQLSTATE class 22: out of range, NUL in text, bad
    encoding) is the request's fault, whatever route it came through: 400, never a 500."""
    log.info("web.invalid_value", extra={"path": request.url.path, "method": request.method,
                                         "sqlstate": getattr(exc, "sqlstate", None), "error": type(exc).__name__})
    if wants_json(request):
        return json_error(400, "invalid_value", INVALID_VALUE)
    return error_page(request, 400, INVALID_VALUE)


def integrity_error_handler(request: Request, exc: psycopg.IntegrityError) -> Response:
    """A row the database refuses (a check, a duplicate, a reference to nothing) that no route
    validated first: the request asked for something impossible — 409, with the constraint in
    the log so the missing validation is found and given its own message."""
    diag = getattr(exc, "diag", None)
    log.warning("web.integrity_refused", extra={"path": request.url.path, "method": request.method,
                                                "sqlstate": getattr(exc, "sqlstate", None),
                                                "constraint": getattr(diag, "constraint_name", None)})
    message = "The request conflicts with the stored data or its rules. Check the values and try again."
    if wants_json(request):
        return json_error(409, "conflict", message)
    return error_page(request, 409, message)


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.error("web.unhandled", extra={"path": request.url.path, "method": request.method}, exc_info=exc)
    if wants_json(request):
        return json_error(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error",
                          "An unexpected error happened; it has been logged.")
    return error_page(request, 500)
