"""Input checks shared by the pages and the JSON API, and the errors the area raises.

Validators take raw values (form strings or decoded JSON) and return clean values or raise
:class:`InputError` with one English message per field. Messages are msgids (marked with
``N_`` so the catalog checker extracts them): pages translate them, the API returns them
as they are. Existence of referenced rows (site, unit, alert) is checked by the service
modules, which know the tenant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import available_timezones

from optria.assets.models import (
    ALERT_SOURCES,
    ASSET_TYPES,
    CRITICALITIES,
    SEVERITIES,
    WO_PRIORITIES,
    WO_STATUSES,
)
from optria.web.errors import ApiError
from optria.web.list_filters import parse_id


def N_(message: str) -> str:
    """Marks a msgid for extraction; translated where it is shown."""
    return message


CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
NAME_MAX = 200
TEXT_MAX = 4000
SITE_DESCRIPTION_MAX = 2000
NOTE_MAX = 1000
SOURCE_REF_MAX = 200
INTERVAL_MAX_S = 86400
_TIMEZONES: set[str] | None = None


class InputError(Exception):
    """Values that fail validation: ``fields`` maps a field name to an English msgid."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields

    @property
    def message(self) -> str:
        return " ".join(self.fields.values())


class NotFound(Exception):
    """The row is not in the caller's tenant (or does not exist): the two are never told apart."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind} not found")
        self.kind = kind


class Conflict(Exception):
    """The request is valid but clashes with the current state (a taken code, a finished alert)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def form_problem(exc: InputError | Conflict) -> tuple[dict[str, str], int]:
    """(field → message, status) for a form page to show again: 422 for bad values, 409 for a conflict
    (on its field, or the whole form)."""
    if isinstance(exc, InputError):
        return exc.fields, 422
    return {exc.field or "form": exc.message}, 409


def api_error(exc: NotFound | InputError | Conflict, not_found: Mapping[str, str]) -> ApiError:
    """The error as the JSON API answers it: 404 ``<kind>_not_found`` (``not_found`` says it per kind),
    422 with the fields, 409 with the conflict's code and field."""
    if isinstance(exc, NotFound):
        return ApiError(404, f"{exc.kind}_not_found", not_found.get(exc.kind, "Not found."))
    if isinstance(exc, InputError):
        return ApiError(422, "validation_error", exc.message, extra={"fields": exc.fields})
    return ApiError(409, exc.code, exc.message, extra={"field": exc.field} if exc.field else None)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value).strip()


def _code(value: Any, errors: dict[str, str], field: str = "code") -> str:
    code = _text(value)
    if not code:
        errors[field] = N_("Enter a code.")
    elif not CODE_RE.match(code):
        errors[field] = N_(
            "Use up to 64 letters, digits, dots, dashes, slashes or underscores, starting with a letter or digit.")
    return code


def _name(value: Any, errors: dict[str, str], field: str = "name", *, required: bool = True,
          missing: str = N_("Enter a name.")) -> str | None:
    name = _text(value)
    if not name:
        if required:
            errors[field] = missing
        return None
    if len(name) > NAME_MAX:
        errors[field] = N_("This text is limited to 200 characters.")
    return name


def _long_text(value: Any, errors: dict[str, str], field: str, limit: int = TEXT_MAX) -> str:
    text = _text(value)
    if len(text) > limit:
        errors[field] = N_("This text is too long.")
    return text


def _choice(value: Any, choices: tuple[str, ...], errors: dict[str, str], field: str, message: str) -> str:
    text = _text(value)
    if text not in choices:
        errors[field] = message
    return text


def _ref(value: Any, errors: dict[str, str], field: str, message: str, *, required: bool) -> int | None:
    if value is None or _text(value) == "":
        if required:
            errors[field] = message
        return None
    ref = parse_id(value)
    if ref is None:
        errors[field] = message
    return ref


def _timezone(value: Any, errors: dict[str, str]) -> str:
    global _TIMEZONES
    tz = _text(value) or "UTC"
    if _TIMEZONES is None:
        _TIMEZONES = available_timezones() | {"UTC"}
    if tz not in _TIMEZONES:
        errors["timezone"] = N_("Choose a time zone such as Asia/Riyadh or UTC.")
    return tz


def _raise(errors: dict[str, str]) -> None:
    if errors:
        raise InputError(errors)


def site_values(raw: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values = {
        "code": _code(raw.get("code"), errors),
        "name": _name(raw.get("name"), errors),
        "name_ar": _name(raw.get("name_ar"), errors, "name_ar", required=False),
        "description": _long_text(raw.get("description"), errors, "description", SITE_DESCRIPTION_MAX),
        "description_ar": _long_text(raw.get("description_ar"), errors, "description_ar", SITE_DESCRIPTION_MAX) or None,
        "timezone": _timezone(raw.get("timezone"), errors),
    }
    _raise(errors)
    return values


def unit_values(raw: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values = {
        "site_id": _ref(raw.get("site_id"), errors, "site_id", N_("Choose a site from the list."), required=True),
        "code": _code(raw.get("code"), errors),
        "name": _name(raw.get("name"), errors),
        "name_ar": _name(raw.get("name_ar"), errors, "name_ar", required=False),
    }
    _raise(errors)
    return values


def _interval(value: Any, errors: dict[str, str]) -> int:
    if isinstance(value, bool):
        value = None
    number: int | None = value if isinstance(value, int) else None
    if number is None:
        text = _text(value)
        number = int(text) if text.isdigit() and text.isascii() and len(text) < 9 else None
    if number is None or not 1 <= number <= INTERVAL_MAX_S:
        errors["expected_interval_s"] = N_("Enter the expected data interval in seconds, from 1 to 86400.")
        return 60
    return number


def asset_values(raw: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values = {
        "site_id": _ref(raw.get("site_id"), errors, "site_id", N_("Choose a site from the list."), required=True),
        "unit_id": _ref(raw.get("unit_id"), errors, "unit_id", N_("Choose a unit from the list."), required=False),
        "code": _code(raw.get("code"), errors),
        "name": _name(raw.get("name"), errors),
        "name_ar": _name(raw.get("name_ar"), errors, "name_ar", required=False),
        "asset_type": _choice(raw.get("asset_type") or "other", ASSET_TYPES, errors, "asset_type",
                              N_("Choose an asset type from the list.")),
        "criticality": _choice(raw.get("criticality") or "medium", CRITICALITIES, errors, "criticality",
                               N_("Choose a criticality: low, medium or high.")),
        "description": _long_text(raw.get("description"), errors, "description"),
        "description_ar": _long_text(raw.get("description_ar"), errors, "description_ar") or None,
        "expected_interval_s": _interval(raw.get("expected_interval_s", 60), errors),
    }
    _raise(errors)
    return values


def alert_values(raw: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    source_ref = _text(raw.get("source_ref")) or None
    if source_ref and len(source_ref) > SOURCE_REF_MAX:
        errors["source_ref"] = N_("The source reference is limited to 200 characters.")
    values = {
        "severity": _choice(raw.get("severity"), SEVERITIES, errors, "severity",
                            N_("Choose a severity: info, low, medium, high or critical.")),
        "title": _name(raw.get("title"), errors, "title", missing=N_("Enter a title.")),
        "description": _long_text(raw.get("description"), errors, "description"),
        "source": _choice(raw.get("source") or "manual", ALERT_SOURCES, errors, "source",
                          N_("The source must be manual, rule, ingest or ai.")),
        "source_ref": source_ref,
    }
    _raise(errors)
    return values


def work_order_values(raw: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values = {
        "title": _name(raw.get("title"), errors, "title", missing=N_("Enter a title.")),
        "description": _long_text(raw.get("description"), errors, "description"),
        "priority": _choice(raw.get("priority") or "medium", WO_PRIORITIES, errors, "priority",
                            N_("Choose a priority: low, medium, high or urgent.")),
        "alert_id": _ref(raw.get("alert_id"), errors, "alert_id", N_("Choose an alert of this asset, or none."),
                         required=False),
    }
    _raise(errors)
    return values


def work_order_status(value: Any) -> str:
    errors: dict[str, str] = {}
    status = _choice(value, WO_STATUSES, errors, "status", N_("The status must be open, in_progress or closed."))
    _raise(errors)
    return status


def note_value(value: Any) -> str:
    errors: dict[str, str] = {}
    note = _long_text(value, errors, "note", NOTE_MAX)
    if errors:
        errors["note"] = N_("Notes are limited to 1000 characters.")
    _raise(errors)
    return note
