"""Figures, times and generated texts in the reader's language (optria.web.formatting, optria.web.messages):
Babel per locale, the page's time zone, localized units, isolated mixed runs, stored messages with a
fallback for old rows — and everything escaped."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone

import pytest

from optria.blackbox.messages import MESSAGES, limit_message
from optria.blackbox.presenting import event_text, incident_title
from optria.connectors.base import TEST_MESSAGES
from optria.integrations.views import action_text
from optria.integrations.views import test_text as connection_text
from optria.web import formatting, i18n, messages
from optria.identity.audit_details import describe_details

WHEN = datetime(2026, 12, 6, 15, 4, 13, tzinfo=timezone.utc)


@contextmanager
def reader(lang: str, zone: str = "Asia/Riyadh"):
    t1, t2 = i18n.current_lang.set(lang), formatting.current_zone.set(zone)
    try:
        yield
    finally:
        i18n.current_lang.reset(t1)
        formatting.current_zone.reset(t2)


def test_times_are_in_the_page_zone_and_language() -> None:
    with reader("ar"):
        text = str(formatting.dt(WHEN, True))
        assert "18:04:13" in text and "ديسمبر" in text and 'datetime="2026-12-06T15:04:13+00:00"' in text
        assert 'dir="rtl"' in text and "UTC" not in text
    with reader("en", "UTC"):
        assert "15:04" in str(formatting.dt(WHEN)) and "Dec 6, 2026" in str(formatting.dt(WHEN))
    with reader("en", "Not/AZone"):
        assert "15:04" in str(formatting.dt(WHEN))          # an unknown zone falls back to UTC, never fails
    assert str(formatting.dt(None)) == "—"


@pytest.mark.parametrize("lang,unit,expected", [
    ("ar", "degC", "°م"), ("en", "degC", "°C"), ("ar", "mm/s", "مم/ث"), ("en", "m3/h", "m³/h"),
    ("ar", "KW", "كيلوواط"), ("ar", "furlongs", "furlongs"), ("en", None, "")])
def test_units_in_the_readers_language(lang, unit, expected) -> None:
    with reader(lang):
        assert formatting.unit_text(unit) == expected


def test_quantities_percentages_and_rates_are_isolated() -> None:
    with reader("ar"):
        q = str(formatting.qty(11.3464, "mm/s"))
        assert q == '<bdi dir="rtl" class="qty"><bdi dir="ltr">11.35</bdi> <bdi class="unit">مم/ث</bdi></bdi>'
        assert str(formatting.pct(0.853)) == '<bdi dir="rtl" class="num">85%</bdi>'
        assert str(formatting.rate(19.0)) == '<bdi dir="rtl" class="num">19.0/ث</bdi>'
        assert "ملي ث" in str(formatting.millis(2605)) and "2,605" in str(formatting.millis(2605))
    with reader("en"):
        assert str(formatting.pct(0.02)) == '<bdi dir="ltr" class="num">2%</bdi>'
        assert formatting.number_text(1234.5) == "1,234.50" and formatting.measured_text(0.04213) == "0.0421"
        assert str(formatting.duration(591)) == '<bdi dir="ltr" class="num">10 min</bdi>'


def test_a_limit_breach_reads_in_either_language_with_its_parts_isolated() -> None:
    row = {"summary": "RasTanura.CrudeUnit.P-101.Vibration: 11.0097 mm/s > 11",
           "payload": {"msg": limit_message("breach", "crit_high", "RasTanura.CrudeUnit.P-101.Vibration", 11.0097, 11.0,
                                            "mm/s")}}
    with reader("ar"):
        text = str(event_text(row))
        assert text.startswith('<bdi dir="ltr" class="tag">RasTanura.CrudeUnit.P-101.Vibration</bdi> عند ')
        assert "فوق حدّه الحرج" in text and "مم/ث" in text and "mm/s" not in text
    with reader("en"):
        assert "above its critical limit of" in str(event_text(row))


def test_old_rows_and_source_texts_fall_back_to_what_was_stored_escaped() -> None:
    with reader("ar"):
        assert str(event_text({"summary": "<b>old</b> summary", "payload": {}})) == \
            '<bdi dir="auto">&lt;b&gt;old&lt;/b&gt; summary</bdi>'
        broken = {"summary": "kept", "payload": {"msg": {"key": "limit_crit_high", "params": {"signal": "x"}}}}
        assert str(event_text(broken)) == '<bdi dir="auto">kept</bdi>'           # a parameter missing: the text
        assert str(incident_title({"title": "T", "title_key": None})) == '<bdi dir="auto">T</bdi>'


def test_names_in_messages_are_escaped() -> None:
    evil = '<img src=x onerror=alert(1)>'
    with reader("ar"):
        text = str(messages.stored({"key": "integration_error", "params": {"integration": evil}}, MESSAGES, "x"))
        assert "<img" not in text and "&lt;img" in text
        connected = connection_text({"success": True, "message": "Connected",
                               "details": {"msg": {"key": "connected_pi", "params": {"product": evil, "server": "S"}}}})
        assert "<img" not in str(connected) and "تم الاتصال" in str(connected)


def test_every_message_key_renders_in_both_languages() -> None:
    samples = {"tag": "A.B.C-101.D", "name": "N", "qty": 1.5, "count": 3, "id": 7, "text": "Vibration", "code": "P-1",
               "millis": 12.0, "codes": ["a"], "texts": ["name"],
               "scope": {"kind": "asset", "code": "P-101", "name": "Pump", "name_ar": "مضخة"}}
    for catalog in (MESSAGES, TEST_MESSAGES):
        for key, (msgid, kinds) in catalog.items():
            params = {name: samples[kind] for name, kind in kinds.items()} | {"unit": "mm/s"}
            for lang in ("ar", "en"):
                with reader(lang):
                    out = str(messages.render(msgid, params, kinds))
                    assert "%(" not in out and (lang == "en" or any("\u0600" <= ch <= "\u06ff" for ch in out)), (key, out)


def test_action_log_and_connection_failures() -> None:
    with reader("ar"):
        changed = action_text({"action": "update", "message": "Settings changed: name, password",
                               "details": {"msg": {"key": "settings_changed", "params": {"fields": ["name", "password"]}}}})
        assert str(changed) == "تغيّرت الإعدادات: الاسم، كلمة المرور"
        failed = str(connection_text({"success": False, "message": "connection refused by 10.0.0.9:4840", "details": {}}))
        assert failed.startswith('<details class="ds-technical">') and "تفاصيل تقنية" in failed   # folded, not a sentence


def test_audit_details_are_spelled_out() -> None:
    with reader("en"):
        pairs = describe_details({"role_mapping": {"claim": "groups", "map": {"Admin": "engineer"}},
                                  "changed": ["name", "password"], "kind": "opcua", "enabled": False})
        assert pairs == [("Role mapping (optional)", "Claim to read: groups; Claim value = role: Admin → Engineer"),
                         ("Changed fields", "name, password"), ("Kind", "OPC-UA"), ("Enabled", "No")]
        assert all("{" not in v and "'" not in v for _, v in pairs)
