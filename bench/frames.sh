#!/usr/bin/env bash
# WAL frames per group commit under POST /tickets load, by b-tree, for threada and for
# the baseline revision side by side: what each table and index costs a commit.
# Each server is loaded with TICKETS tickets, takes wrk's POST /tickets load for a
# few seconds, and is stopped with kill -9 so that its WAL stays for
# bench/walframes.py to read; SAMPLES such stops are added up (a WAL's current cycle
# holds the commits since its last checkpoint: a few to a few dozen).
#
# Usage: bench/frames.sh   (after bench/run.sh, which builds both binaries)
#   env: TICKETS=100000  CONN=32  SAMPLES=5  PORT=18191  BASELINE_DIR=~/.cache/threada/baseline
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TICKETS=${TICKETS:-100000} CONN=${CONN:-32} SAMPLES=${SAMPLES:-5} PORT=${PORT:-18191}
BASELINE_DIR=${BASELINE_DIR:-$HOME/.cache/threada/baseline}
WORK=$(mktemp -d)
SRV=""
trap '[ -n "$SRV" ] && kill -9 "$SRV" 2>/dev/null; rm -rf "$WORK"' EXIT

frames() {
  local name=$1 bin=$2 dir="$WORK/$1"
  mkdir -p "$dir"
  printf '[server]\nbind = "127.0.0.1:%s"\n[database]\npath = "%s/t.db"\nsynchronous = "full"\n[rate_limit]\nrequests_per_minute = 1000000000\nburst = 1000000000\n' \
    "$PORT" "$dir" >"$dir/t.toml"
  local cli=("$bin" --config "$dir/t.toml") tenant key
  tenant=$("${cli[@]}" tenant create --name Frames --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant_id"])')
  key=$("${cli[@]}" key create --tenant "$tenant" --name frames --scopes support.read,support.write --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
  "${cli[@]}" bulk-load --tenant "$tenant" --count "$TICKETS" --json >/dev/null
  local samples=()
  for n in $(seq "$SAMPLES"); do
    "${cli[@]}" serve >"$dir/serve.log" 2>&1 &
    SRV=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
    THREADA_KEY=$key timeout 8 wrk -t2 -c"$CONN" -d6s -s "$ROOT/bench/wrk/post_tickets.lua" "http://127.0.0.1:$PORT" >/dev/null &
    sleep $((3 + n % 2))
    kill -9 "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=""
    wait || true
    mkdir -p "$dir/sample-$n"
    cp "$dir/t.db" "$dir/t.db-wal" "$dir/sample-$n/"
    samples+=("$dir/sample-$n/t.db")
  done
  echo "== $name"
  python3 "$ROOT/bench/walframes.py" "${samples[@]}"
}
frames threada "$ROOT/target/release/threada"
frames baseline "$BASELINE_DIR/target/release/threada"
