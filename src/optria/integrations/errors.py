"""Errors the integrations area raises, turned into API errors or page messages at the edge.

Messages are English msgids (marked with ``N_``): pages translate them, the API returns
them as they are. None of them ever carries a secret.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Marks a msgid for extraction; translated where it is shown."""
    return message


class InputError(Exception):
    """Values that fail validation: ``fields`` maps a field name to an English msgid."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields

    @property
    def message(self) -> str:
        return " ".join(self.fields.values())


class NotFound(Exception):
    """Not in the caller's tenant, or does not exist: the two are never told apart."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind} not found")
        self.kind = kind


class Conflict(Exception):
    """Valid input that clashes with the current state (a taken name, SQL sources switched off)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class SourceError(Exception):
    """The external source could not answer a browse: ``status`` is the HTTP status to answer."""

    def __init__(self, code: str, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


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
