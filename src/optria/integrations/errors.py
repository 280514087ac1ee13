"""Errors the integrations area raises, turned into API errors or page messages at the edge.

Field errors, "not found" and conflicts are the assets area's classes (one meaning across
areas), shown on forms and in the API the same way (``form_problem``, ``api_error``); this
module adds the two only integrations have. Messages are English msgids (marked
with ``N_``): pages translate them, the API returns them as they are. None carries a secret.
"""

from __future__ import annotations

from typing import Any

from optria.assets.validation import N_, Conflict, InputError, NotFound, api_error, form_problem

__all__ = ["N_", "Conflict", "ImportRejected", "InputError", "NOT_FOUND_MESSAGES", "NotFound", "SourceError",
           "api_error", "form_problem"]


class SourceError(Exception):
    """The external source could not answer a browse: ``status`` is the HTTP status to answer
    (424 Failed Dependency unless the request itself was at fault), ``reason`` the connector's code."""

    def __init__(self, code: str, message: str, status: int = 424, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason or code


class ImportRejected(Exception):
    """A CSV apply refused because some rows are invalid; ``report`` says which and why."""

    def __init__(self, report: Any) -> None:
        super().__init__("import rejected")
        self.report = report


NOT_FOUND_MESSAGES = {
    "integration": N_("No integration with this id in your organization."),
    "mapping": N_("No mapping with this id in your organization."),
    "signal": N_("No signal with this id in this integration."),
    "asset": N_("No asset with this id in your organization."),
}
