"""Black Box texts for the pages: event summaries and incident titles in the reader's language.

Rows carry the message a collector stored (``payload.msg``, or ``msg`` where a query selects it)
and the English text beside it; rows written before messages existed, and events from outside
sources (an alert's title, an OPC-UA event's text), are shown as written, isolated from the
sentence around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from optria.blackbox.messages import MESSAGES
from optria.web import messages


def event_text(row: Mapping[str, Any]) -> Markup:
    msg = row.get("msg")
    if msg is None and isinstance(row.get("payload"), Mapping):
        msg = row["payload"].get("msg")
    return messages.stored(msg, MESSAGES, row.get("summary"))


def incident_title(row: Mapping[str, Any]) -> Markup:
    key = row.get("title_key")
    msg = {"key": key, "params": row.get("title_params")} if key else None
    return messages.stored(msg, MESSAGES, row.get("title"))
