"""One owner for time-series data: only ``optria.timeseries`` names the sample, aggregate and
latest-value relations in SQL. Every other module of ``src/`` and ``ingest/`` goes through it,
so what those relations are in each storage tier is decided in one place.

Docstrings and comments may mention the tables; string literals (SQL) may not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "src" / "optria" / "timeseries"
RELATIONS = re.compile(r"\b(signal_samples(_tenant)?|signal_1[mh](_rollup|_agg|_cagg)?|signal_latest|sample_batches)\b")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                ids.add(id(body[0].value))
    return ids


def offenders(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                m = RELATIONS.search(node.value)
                if m:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {m.group(0)}")
    return found


def _modules() -> list[Path]:
    files = sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "ingest").rglob("*.py"))
    return [p for p in files if OWNER not in p.parents]


def test_only_the_timeseries_area_names_time_series_relations() -> None:
    assert offenders(_modules()) == []


def test_the_check_sees_sql_but_not_docstrings(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text('"""Reads signal_latest."""\nQ = "SELECT * FROM signal_latest"\nR = f"x {1} signal_1m_rollup"\n')
    assert [o.split(": ")[1] for o in _check(sample)] == ["signal_latest", "signal_1m_rollup"]


def _check(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    return [f"{n.lineno}: {RELATIONS.search(n.value).group(0)}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
            and RELATIONS.search(n.value)]
