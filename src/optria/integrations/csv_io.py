"""Mappings as CSV: export an integration's mappings, and import them back (preview, then apply).

One row per tag: ``external_id`` (NodeId, PI WebId or SQL tag) and ``asset_code`` are
required; ``metric_role`` is inferred from the name when blank; the other columns default
as in the API. Preview checks every row and reports each rejected one with its line
number and reason; apply writes every row in the caller's transaction, and refuses the
whole file (writing nothing) when any row is rejected.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

from optria.integrations import store
from optria.integrations.errors import N_, ImportRejected, InputError, NotFound
from optria.integrations.messages import action_message
from optria.integrations.mapping import LIMITS, external_id_value, mapping_values, name_of, record_change
from optria.integrations.roles import infer_role
from optria.integrations.service import Actor

COLUMNS = ("external_id", "signal_name", "path", "asset_code", "metric_role", "unit", "scale", "offset",
           "warn_low", "warn_high", "crit_low", "crit_high", "expected_interval_s", "enabled")
REQUIRED = ("external_id", "asset_code")
MAX_ROWS = 10_000
MAX_BYTES = 4 * 1024 * 1024
_FORMULA = ("=", "+", "-", "@")
_TEXT_COLUMNS = ("signal_name", "path")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _safe_text(text: str) -> str:
    """A name a spreadsheet would run as a formula gets a leading apostrophe (removed again on import)."""
    return "'" + text if text.startswith(_FORMULA) else text


def export_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([
            r["external_id"], _safe_text(r["signal_name"]), _safe_text(r["signal_path"] or ""), r["asset_code"],
            r["metric_role"], _cell(r["unit"]), _cell(r["scale"]), _cell(r["offset"]),
            *(_cell(r[k]) for k in LIMITS), _cell(r["expected_interval_s"]), _cell(r["enabled"]),
        ])
    return out.getvalue()


def decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise InputError({"file": N_("The file is too large (4 MB at most).")})
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError({"file": N_("The file must be a UTF-8 encoded CSV.")}) from None


def parse(text: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; InputError for a file that cannot be read as a mappings CSV."""
    if not text.strip():
        raise InputError({"file": N_("The file is empty. Export the mappings to get a file with the right columns.")})
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (csv.Error, StopIteration):
        raise InputError({"file": N_("The file is not a readable CSV.")}) from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError({"file": N_("The first line must name the columns; external_id and asset_code are "
                                     "required.")})
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise InputError({"file": "Unknown columns: " + ", ".join(unknown[:10]) + ". Allowed: " + ", ".join(COLUMNS)})
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise InputError({"file": N_("Too many rows (10000 at most). Split the file.")})
            row = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header) if h}
            for col in _TEXT_COLUMNS:
                if row.get(col, "").startswith("'") and row[col][1:2] in _FORMULA:
                    row[col] = row[col][1:]
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise InputError({"file": f"The CSV is malformed near line {reader.line_num}: {exc}"}) from None
    if not rows:
        raise InputError({"file": N_("The file has no rows to import.")})
    return rows


def _reason(exc: InputError) -> str:
    return " ".join(f"{field}: {message}" for field, message in exc.fields.items())


async def import_csv(conn: store.Conn, tenant_id: UUID, integration_id: int, text: str, *, apply: bool,
                     actor: Actor) -> dict[str, Any]:
    """Check every row; with ``apply`` write them all (raises ImportRejected if any row is bad)."""
    integration = await store.get_integration(conn, tenant_id, integration_id)
    if integration is None:
        raise NotFound("integration")
    rows = parse(text)
    assets = await store.asset_ids_by_code(conn, tenant_id, sorted({r["asset_code"] for _, r in rows if r.get("asset_code")}))
    existing = await store.mapped_external_ids(conn, tenant_id, integration_id,
                                               [r["external_id"] for _, r in rows if r.get("external_id")])
    first_line: dict[str, int] = {}
    rejected: list[dict[str, Any]] = []
    valid: list[tuple[dict[str, str], dict[str, Any]]] = []
    for line, row in rows:
        ext = row.get("external_id", "")
        try:
            ext = external_id_value(integration["kind"], ext)
            if ext in first_line:
                raise InputError({"external_id": N_("This tag id is already on an earlier line of the file.")})
            first_line[ext] = line
            asset_id = assets.get(row.get("asset_code", "").lower())
            if asset_id is None:
                raise InputError({"asset_code": N_("No asset with this code in your organization.")})
            name = row.get("signal_name") or name_of(ext)
            raw = {k: row[k] for k in row if k in ("unit", "scale", "offset", "expected_interval_s", "enabled", *LIMITS)}
            raw["metric_role"] = row.get("metric_role") or infer_role(name, row.get("path"), row.get("unit"))
            values = mapping_values({**raw, "asset_id": asset_id})
            valid.append((row | {"external_id": ext}, values))
        except InputError as exc:
            rejected.append({"line": line, "external_id": ext[:200], "reason": _reason(exc), "fields": exc.fields})
    updates = sum(1 for row, _ in valid if row["external_id"] in existing)
    report = {"mode": "apply" if apply else "preview", "applied": False, "total_rows": len(rows),
              "valid_rows": len(valid), "creates": len(valid) - updates, "updates": updates, "rejected": rejected}
    if not apply:
        return report
    if rejected:
        raise ImportRejected(report)
    for row, values in valid:
        signal_id = await store.upsert_signal(conn, tenant_id, integration_id, external_id=row["external_id"],
                                              name=row.get("signal_name") or None, path=row.get("path") or "")
        current = await store.mapping_of_signal(conn, tenant_id, signal_id)
        if current is None:
            await store.insert_mapping(conn, tenant_id, signal_id, values)
        else:
            await store.update_mapping(conn, tenant_id, current["id"], values)
    await record_change(conn, tenant_id, integration_id, actor, "mappings_import",
                  f"CSV import: {report['creates']} created, {report['updates']} updated",
                  {"created": report["creates"], "updated": report["updates"], "rows": len(rows),
                   "msg": action_message("mappings_import", created=report["creates"], updated=report["updates"])},
                  integration["name"])
    return report | {"applied": True}
