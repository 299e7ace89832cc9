#!/usr/bin/env bash
# OpenAPI conformance: a pinned Schemathesis release checks the running server against
# the document it serves (GET /api/v1/public/openapi.json), with every check enabled,
# a fixed seed and bounded examples.
#
# Usage: conformance/run.sh        (from anywhere; needs python3 with venv, and cargo)
#   env: EXAMPLES=25 (per operation and phase)  SEED=20261124  VENV=target/conformance-venv
# The server runs as `threada demo` on 127.0.0.1 with a fresh database in a temporary
# directory: the demo tenant's action_base_url is the server's own /demo hook receiver,
# so actions complete. Two runs: a key holding all three scopes, then a read-only key.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${EXAMPLES:-25} SEED=${SEED:-20261124} VENV=${VENV:-$ROOT/target/conformance-venv}

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== building (release)" >&2
cargo build --release --quiet
BIN="$ROOT/target/release/threada"

WORK=$(mktemp -d)
SRV=""
cleanup() {
  if [ -n "$SRV" ]; then kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cat >"$WORK/threada.toml" <<TOML
[server]
bind = "127.0.0.1:0"
[database]
path = "$WORK/threada.db"
[rate_limit]
requests_per_minute = 100000000
burst = 100000000
[log]
level = "warn,threada::cli=info"
TOML
CLI=("$BIN" --config "$WORK/threada.toml")

(cd "$WORK" && exec "${CLI[@]}" demo >"$WORK/demo.out" 2>"$WORK/server.log") & SRV=$!
PORT=""
for _ in $(seq 200); do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
  [ -n "$PORT" ] && grep -q "body_json" "$WORK/demo.out" && break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$WORK/server.log" >&2; echo "server did not start" >&2; exit 1; }
BASE="http://127.0.0.1:$PORT"

TENANT=$("${CLI[@]}" tenant list --json | python3 -c 'import json,sys; print([t["tenant_id"] for t in json.load(sys.stdin)["items"] if t["name"] == "Demo"][0])')
key() {
  "${CLI[@]}" key create --tenant "$TENANT" --name "$1" --scopes "$2" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])'
}
FULL_KEY=$(key conformance-all support.read,support.write,support.actions)
READ_KEY=$(key conformance-read support.read)

run() {
  local label=$1 key=$2 examples=$3
  echo "== schemathesis $SCHEMATHESIS_VERSION: $label (max $examples examples, seed $SEED)" >&2
  PYTHONPATH="$ROOT/conformance" SCHEMATHESIS_HOOKS=hooks "$VENV/bin/st" \
    --config-file "$ROOT/conformance/schemathesis.toml" run "$BASE/api/v1/public/openapi.json" \
    --url "$BASE" \
    --checks all \
    --header "X-Api-Key: $key" \
    --max-examples "$examples" \
    --seed "$SEED" \
    --workers 1 \
    --request-timeout 30 \
    --no-color
}
status=0
run "key with all scopes" "$FULL_KEY" "$EXAMPLES" || status=1
run "read-only key" "$READ_KEY" "$(( EXAMPLES / 2 > 0 ? EXAMPLES / 2 : 1 ))" || status=1
if grep -q "panicked" "$WORK/server.log"; then
  echo "the server logged a panic:" >&2; grep -A3 panicked "$WORK/server.log" >&2; status=1
fi
exit $status
