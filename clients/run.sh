#!/usr/bin/env bash
# Generated clients, as integrators make them: the document checked by strict
# validators, clients generated from it, type-checked, and the documentation's flows
# (plus paging, an error and 429 retries) run through them against a real server.
#
# Usage: clients/run.sh      (from anywhere; .ci/tools/install.sh first)
#   1. openapi-spec-validator, Redocly lint (no error, no warning), Ajv 2020 strict
#      (every schema compiles, every example validates: clients/check-openapi.mjs);
#   2. openapi-python-client → target/clients/python; mypy --strict on the package and
#      clients/python/flows.py;
#   3. openapi-typescript → target/clients/typescript/schema.d.ts; tsc --strict of
#      clients/typescript/flows.ts (openapi-fetch);
#   4. both flows against `threada demo` on a fresh database.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TOOLS="$ROOT/target/tools/node_modules" VENV="$ROOT/target/ci-venv" OUT="$ROOT/target/clients"
DOC="$ROOT/docs/openapi.json"
[ -x "$VENV/bin/openapi-python-client" ] && [ -d "$TOOLS/openapi-fetch" ] \
  || { echo "run .ci/tools/install.sh first" >&2; exit 1; }

echo "== validators" >&2
"$VENV/bin/openapi-spec-validator" "$DOC"
"$TOOLS/.bin/redocly" lint "$DOC" --format=summary --max-problems=50 2>&1 | grep -v '[║╔╚]' \
  | tee "$OUT.redocly.log" >&2 || true
grep -q "Your API description is valid" "$OUT.redocly.log" \
  || { echo "Redocly found problems (above)" >&2; exit 1; }
if grep -qE "^warning" "$OUT.redocly.log"; then echo "Redocly warnings (above)" >&2; exit 1; fi
NODE_PATH="$TOOLS" node clients/check-openapi.mjs "$DOC"

echo "== Python: openapi-python-client, mypy --strict" >&2
rm -rf "$OUT/python" && mkdir -p "$OUT/python"
"$VENV/bin/openapi-python-client" generate --path "$DOC" --meta none \
  --config clients/python/config.yaml --output-path "$OUT/python/threada_client" 2>&1 | tee "$OUT/python.log" >&2
if grep -qi "warning" "$OUT/python.log"; then echo "openapi-python-client warned (above)" >&2; exit 1; fi
cp clients/python/flows.py "$OUT/python/"
(cd "$OUT/python" && "$VENV/bin/mypy" --strict --no-error-summary threada_client flows.py)

echo "== TypeScript: openapi-typescript, tsc --strict" >&2
rm -rf "$OUT/typescript" && mkdir -p "$OUT/typescript"
"$TOOLS/.bin/openapi-typescript" "$DOC" -o "$OUT/typescript/schema.d.ts" 2>&1 | tee "$OUT/typescript.log" >&2
if grep -qiE "warn|⚠" "$OUT/typescript.log"; then echo "openapi-typescript warned (above)" >&2; exit 1; fi
cp clients/typescript/flows.ts clients/typescript/tsconfig.json "$OUT/typescript/"
printf '{"type": "module", "private": true}\n' >"$OUT/typescript/package.json"
ln -sfn "$TOOLS" "$OUT/typescript/node_modules"
"$TOOLS/.bin/tsc" -p "$OUT/typescript/tsconfig.json"

echo "== the flows against threada demo" >&2
cargo build --release --quiet
WORK=$(mktemp -d) SRV=""
cleanup() {
  if [ -n "$SRV" ]; then kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
(cd "$WORK" && THREADA_SERVER_BIND=127.0.0.1:0 THREADA_DATABASE_PATH="$WORK/demo.db" \
  exec "$ROOT/target/release/threada" demo --json >"$WORK/demo.json" 2>"$WORK/server.log") & SRV=$!
for _ in $(seq 300); do [ -s "$WORK/demo.json" ] && break; sleep 0.1; done
[ -s "$WORK/demo.json" ] || { cat "$WORK/server.log" >&2; echo "demo did not start" >&2; exit 1; }
THREADA_URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base_url"])' "$WORK/demo.json")
THREADA_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_key"])' "$WORK/demo.json")
export THREADA_URL THREADA_KEY
(cd "$OUT/python" && "$VENV/bin/python" flows.py)
node "$OUT/typescript/flows.js"
