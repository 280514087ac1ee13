"""Guessing a tag's metric role from its name, path and engineering unit.

Used when a bulk mapping or a CSV row gives no role: ``RasTanura.CrudeUnit.P-101.Vibration``
is a vibration, ``TI-101 degC`` a temperature. The tag's own last name segment speaks
first, then the rest of the path, then the unit; nothing recognised gives ``other``.
"""

from __future__ import annotations

import re

# Whole words (tokens) that name a role. Instrument prefixes (TT, PT, FT...) count only as a
# token of their own (``TT-101``), never inside a word.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "vibration": ("vibration", "vib", "vibr", "vt", "velocity", "acceleration"),
    "temperature": ("temperature", "temp", "tt", "ti", "tc", "degc", "degf"),
    "pressure": ("pressure", "press", "pt", "pi", "pic", "barg"),
    "flow": ("flow", "flowrate", "ft", "fi", "fic"),
    "power": ("power", "kw", "mw", "jt", "load"),
    "running": ("running", "run", "runstatus", "state", "status", "onoff", "tripped", "trip"),
    "level": ("level", "lvl", "lt", "li", "lic"),
    "speed": ("speed", "rpm", "st", "si"),
    "current": ("current", "amps", "amp", "it", "ii"),
}
UNITS: dict[str, str] = {
    "mm/s": "vibration", "in/s": "vibration", "um": "vibration", "g": "vibration",
    "degc": "temperature", "°c": "temperature", "degf": "temperature", "°f": "temperature", "k": "temperature",
    "bar": "pressure", "barg": "pressure", "kpa": "pressure", "mpa": "pressure", "psi": "pressure", "psig": "pressure",
    "m3/h": "flow", "m³/h": "flow", "kg/h": "flow", "t/h": "flow", "l/s": "flow", "bbl/d": "flow",
    "kw": "power", "mw": "power", "w": "power",
    "rpm": "speed", "a": "current", "ma": "current",
}
_TOKEN = re.compile(r"[A-Za-z]+")


def _role_of_tokens(text: str) -> str | None:
    tokens = [t.lower() for t in _TOKEN.findall(text or "")]
    for token in reversed(tokens):  # the most specific (last) word first
        for role, words in KEYWORDS.items():
            if token in words:
                return role
    return None


def infer_role(name: str | None, path: str | None = None, eng_unit: str | None = None) -> str:
    """The role a tag's name suggests; ``other`` when nothing matches."""
    last = re.split(r"[./\\:;|]", name or "")[-1]
    return (_role_of_tokens(last) or _role_of_tokens(name or "") or _role_of_tokens(path or "")
            or UNITS.get((eng_unit or "").strip().lower()) or "other")
