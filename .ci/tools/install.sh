#!/usr/bin/env bash
# Installs the pinned tools the tests use from the package registries, into target/:
#   target/tools/node_modules  (npm: .ci/tools/package.json and its lock)
#   target/ci-venv             (PyPI: .ci/tools/requirements.txt)
# Idempotent: does nothing when the installed versions already match.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS="$ROOT/target/tools" VENV="$ROOT/target/ci-venv"
mkdir -p "$TOOLS"
if ! cmp -s "$ROOT/.ci/tools/package-lock.json" "$TOOLS/package-lock.json"; then
  echo "== npm tools into $TOOLS" >&2
  cp "$ROOT/.ci/tools/package.json" "$ROOT/.ci/tools/package-lock.json" "$TOOLS/"
  (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
fi
if ! cmp -s "$ROOT/.ci/tools/requirements.txt" "$VENV/requirements.txt" 2>/dev/null; then
  echo "== Python tools into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/.ci/tools/requirements.txt"
  cp "$ROOT/.ci/tools/requirements.txt" "$VENV/requirements.txt"
fi
