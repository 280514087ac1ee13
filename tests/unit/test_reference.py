"""docs/REFERENCE.md is generated from the code: it must match what scripts/gen_reference.py writes now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_reference_is_up_to_date() -> None:
    gen = _generator()
    expected = gen.generate()
    current = (ROOT / "docs" / "REFERENCE.md").read_text(encoding="utf-8")
    assert current == expected, "docs/REFERENCE.md is out of date: run python scripts/gen_reference.py"


def test_reference_lists_routes_templates_and_tables() -> None:
    text = _generator().generate()
    assert "| `/platform/poc` | POST | platform_console |" in text
    assert "| `optimization/index.html` | base.html |" in text
    assert "| `optimization_runs` | 0007_optimization | tenant, RLS |" in text
    assert "| `poc_reports` | 0007_optimization | platform, RLS |" in text
