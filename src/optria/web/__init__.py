"""The UI kit every area builds its pages and API answers with: templating, charts, flash messages,
error answers, formatting, translations at run time and request helpers.

The kit imports no area; the application shell (optria.shell) sits above the areas and wires them
into one app.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"   # optria.css and the pages' scripts, served under /static
