# Shared set-up for scripts/demo and scripts/test: a project virtualenv with the locked
# dependencies, installed only when the lock changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "OPTRIA IQ needs Python 3.11 or newer (found: $("$PY" --version 2>&1))." >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "→ creating virtualenv .venv"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.optria-lock.sha256"
WANT="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "→ installing locked dependencies"
  if ! "$VENV/bin/python" -m uv --version >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$VENV/bin/python" -m ensurepip --upgrade >/dev/null
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
  fi
  "$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" --require-hashes -r requirements.lock
  "$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" --no-deps -e .
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
