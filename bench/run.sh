#!/usr/bin/env bash
# threada benchmark: release build, fresh database with synchronous=full, N tickets
# loaded through the same code as POST /tickets, then wrk scenarios, then the ceiling
# kit from ../shared/bench in the same run; every figure is printed beside its ceiling.
#
# Usage: bench/run.sh                       (from the project root)
#   env: TICKETS=1000000  DUR=10s  CONN=32  WRK_THREADS=2  PORT=18181
#        CEILINGS=1 (0 skips the ceiling kit)  KIT=../shared/bench  OUT=bench/out
#        METRICS=0 (1 serves with metrics.enabled: what recording them costs)
#        BASELINE=d900e91 (a revision without the search index and the event outbox,
#        built from `git archive` into BASELINE_DIR=~/.cache/threada/baseline, loaded
#        with the same tickets and served beside ours on PORT+1: POST /tickets runs
#        alternate between the two; empty skips it)
#        KIT_COPY=~/.cache/threada/ceiling-kit (where the kit is built: outside this
#        project, so that our .cargo/config.toml SQLite flags do not leak into it)
# Needs wrk (apt-get install -y wrk), python3 and curl. Binds 127.0.0.1 only; the
# server is stopped by PID on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TICKETS=${TICKETS:-1000000} DUR=${DUR:-10s} CONN=${CONN:-32} WRK_THREADS=${WRK_THREADS:-2}
PORT=${PORT:-18181} CEILINGS=${CEILINGS:-1} KIT=${KIT:-$ROOT/../shared/bench} OUT=${OUT:-$ROOT/bench/out}
KIT_COPY=${KIT_COPY:-$HOME/.cache/threada/ceiling-kit}
METRICS=${METRICS:-0}
BASELINE=${BASELINE-d900e91} BASELINE_DIR=${BASELINE_DIR:-$HOME/.cache/threada/baseline}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

RUN_DIR="$OUT/run-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN_DIR"
RESULTS="$RUN_DIR/results.tsv"   # metric<TAB>value
: >"$RESULTS"
SRV="" OLD=""
cleanup() {
  for pid in $SRV $OLD; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== building (release)" >&2
cargo build --release --quiet
BIN="$ROOT/target/release/threada"
if [ -n "$BASELINE" ]; then
  echo "== building the baseline $BASELINE (release) in $BASELINE_DIR" >&2
  rev=$(git rev-parse --short "$BASELINE")
  if [ "$(cat "$BASELINE_DIR/REV" 2>/dev/null)" != "$rev" ]; then
    rm -rf "$BASELINE_DIR/src"; mkdir -p "$BASELINE_DIR/src"
    git archive "$rev" | tar -x -C "$BASELINE_DIR/src"
    echo "$rev" >"$BASELINE_DIR/REV"
  fi
  (cd "$BASELINE_DIR/src" && CARGO_TARGET_DIR="$BASELINE_DIR/target" cargo build --release --quiet)
fi

# prepare NAME BIN PORT: a config, a tenant, a key and TICKETS tickets; sets KEY.
prepare() {
  local name=$1 bin=$2 port=$3
  cat >"$RUN_DIR/$name.toml" <<EOF
[server]
bind = "127.0.0.1:$port"
[database]
path = "$RUN_DIR/$name.db"
synchronous = "full"
[rate_limit]
requests_per_minute = 1000000000
burst = 1000000000
EOF
  # Metrics for ours only: the baseline revision has no such section.
  if [ "$METRICS" = 1 ] && [ "$name" = threada ]; then printf '[metrics]\nenabled = true\n' >>"$RUN_DIR/$name.toml"; fi
  local cli=("$bin" --config "$RUN_DIR/$name.toml") tenant
  tenant=$("${cli[@]}" tenant create --name Bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant_id"])')
  KEY=$("${cli[@]}" key create --tenant "$tenant" --name bench --scopes support.read,support.write,support.actions --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
  echo "== $name: loading $TICKETS tickets (bulk-load: same parsing and unit of work as POST /tickets)" >&2
  "${cli[@]}" bulk-load --tenant "$tenant" --count "$TICKETS" --json | tee "$RUN_DIR/$name-load.json" >&2
  printf '%s bulk-load tickets/s\t%s\n' "$name" \
    "$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["tickets_per_second"]))' "$RUN_DIR/$name-load.json")" >>"$RESULTS"
}
if [ -n "$BASELINE" ]; then
  prepare baseline "$BASELINE_DIR/target/release/threada" $((PORT + 1))
  OLD_KEY=$KEY
fi
prepare threada "$BIN" "$PORT"
CLI=("$BIN" --config "$RUN_DIR/threada.toml")
# Flush the load's dirty pages now, so that their writeback does not stall the
# fsyncs of the write scenarios later on.
sync

echo "== starting the server" >&2
"${CLI[@]}" serve 2>"$RUN_DIR/server.log" & SRV=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf -o /dev/null "$BASE/readyz" && break; sleep 0.1; done
curl -sf -o /dev/null "$BASE/readyz"
if [ -n "$BASELINE" ]; then
  "$BASELINE_DIR/target/release/threada" --config "$RUN_DIR/baseline.toml" serve 2>"$RUN_DIR/baseline.log" & OLD=$!
  OLD_BASE="http://127.0.0.1:$((PORT + 1))"
  for _ in $(seq 100); do curl -sf -o /dev/null "$OLD_BASE/readyz" && break; sleep 0.1; done
  curl -sf -o /dev/null "$OLD_BASE/readyz"
fi

# Inputs for the per-ticket scenarios and the deep page (token at position ~250,000).
export THREADA_KEY="$KEY" THREADA_RUN="$(date +%s)"
read -r THREADA_TICKETS DEEP_TOKEN < <(python3 - "$BASE" "$KEY" "$TICKETS" <<'PY'
import json, sys, urllib.request
base, key, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
def get(path):
    req = urllib.request.Request(base + path, headers={"X-Api-Key": key})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
page = get("/api/v1/public/tickets?limit=100")
ids = ",".join(t["ticket_id"] for t in page["items"])
target, seen, token = min(250_000, max(total // 4, 100)), 100, page["next_page_token"]
while seen + 100 <= target and token:
    page = get("/api/v1/public/tickets?limit=100&page_token=" + token)
    seen += len(page["items"])
    token = page["next_page_token"]
print(ids, token or "")
PY
)
export THREADA_TICKETS
echo "== deep page token taken after $((TICKETS < 1000000 ? TICKETS / 4 : 250000)) tickets" >&2

# scenario NAME SCRIPT [env...]: one wrk run, results appended as metric lines.
# C=connections (default CONN) and URL (default BASE) may be set for one call.
scenario() {
  local name=$1 script=$2; shift 2
  local line c=${C:-$CONN}
  line=$(env "$@" wrk -t"$((c < WRK_THREADS ? c : WRK_THREADS))" -c"$c" -d"$DUR" -s "$ROOT/bench/wrk/$script" "${URL:-$BASE}" | grep '^WRK')
  echo "$line" | awk -v m="$name" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    printf "%s req/s\t%.0f\n%s p50 ms\t%.3f\n%s p99 ms\t%.3f\n", m, f["rps"], m, f["p50_us"] / 1000, m, f["p99_us"] / 1000
    if (f["non2xx"] + f["sockerr"] > 0) printf "WARNING %s: %d non-2xx, %d socket errors\n", m, f["non2xx"], f["sockerr"] > "/dev/stderr" }' >>"$RESULTS"
  echo "   $name: $(grep -F "$name req/s" "$RESULTS" | tail -1 | cut -f2) req/s" >&2
}

echo "== wrk -t$WRK_THREADS -c$CONN -d$DUR" >&2
wrk -t"$WRK_THREADS" -c"$CONN" -d2s -s "$ROOT/bench/wrk/get_tickets.lua" "$BASE" >/dev/null   # warm-up
# First and deep pages alternate three times (medians reported): their ratio is a
# target, and one run each is within this machine's noise.
for _ in 1 2 3; do
  scenario "GET /tickets?limit=25" get_tickets.lua
  scenario "GET /tickets?limit=25 deep page" get_tickets.lua THREADA_TOKEN="$DEEP_TOKEN"
done
scenario "GET /tickets/{id}" get_ticket.lua
# Search, first page, one client at a time (latency) and CONN clients (throughput):
# a ticket number is a term of one ticket, "refund" one of a tenth of them.
C=1 scenario "search rare term, 1 client" get_tickets.lua THREADA_QUERY="q=$((TICKETS / 2))"
C=1 scenario "search 10% term, 1 client" get_tickets.lua THREADA_QUERY="q=refund"
C=1 scenario "search 10% term by date, 1 client" get_tickets.lua THREADA_QUERY="q=refund&sort=-created_at"
scenario "search rare term" get_tickets.lua THREADA_QUERY="q=$((TICKETS / 2))"
scenario "search 10% term" get_tickets.lua THREADA_QUERY="q=refund"
# Creates with and without the search index and the event outbox, alternating
# (fsync-bound: one run each is within this machine's noise; medians reported).
for _ in 1 2 3; do
  scenario "POST /tickets" post_tickets.lua
  if [ -n "$BASELINE" ]; then
    URL=$OLD_BASE scenario "POST /tickets baseline $BASELINE" post_tickets.lua THREADA_KEY="$OLD_KEY"
  fi
done
scenario "POST /tickets/{id}/messages" post_messages.lua
scenario "mix 90% GET list / 10% POST" mix.lua
RSS_KB=$(awk '/VmHWM/ { print $2 }' "/proc/$SRV/status")
printf 'server peak RSS MB\t%.1f\n' "$(echo "$RSS_KB / 1024" | bc -l)" >>"$RESULTS"
TOTAL=$(sqlite3 "$RUN_DIR/threada.db" "SELECT count(*) FROM tickets" 2>/dev/null || echo "?")
kill "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=""
if [ -n "$OLD" ]; then kill "$OLD"; wait "$OLD" 2>/dev/null || true; OLD=""; fi

CEIL="$RUN_DIR/ceilings.txt"
if [ "$CEILINGS" = 1 ]; then
  echo "== ceiling kit ($KIT)" >&2
  # The kit builds into its own directory; work on a copy (../shared is read-only),
  # and run it from there, so that cargo does not pick up this project's config.
  if [ ! -d "$KIT_COPY" ] || [ "$KIT/run-ceilings.sh" -nt "$KIT_COPY/run-ceilings.sh" ]; then
    rm -rf "$KIT_COPY"; mkdir -p "$(dirname "$KIT_COPY")"; cp -r "$KIT" "$KIT_COPY"; chmod -R u+w "$KIT_COPY"
  fi
  (cd "$KIT_COPY" && RUNS=1 DUR="$DUR" CONN="$CONN" WRK_THREADS="$WRK_THREADS" ./run-ceilings.sh) >"$CEIL"
fi

echo
echo "threada $(git rev-parse --short HEAD 2>/dev/null || echo '?') on $(nproc) cores, $(date -u +%FT%TZ)"
echo "wrk -t$WRK_THREADS -c$CONN -d$DUR on loopback (shares the cores with the server); synchronous=full; metrics.enabled=$([ "$METRICS" = 1 ] && echo true || echo false);"
echo "$TICKETS tickets loaded, $TOTAL at the end; run directory $RUN_DIR"
python3 - "$RESULTS" "$CEIL" "$BASELINE" <<'PY'
import re, sys
import statistics
runs = {}
for line in open(sys.argv[1]):
    name, value = line.rstrip("\n").split("\t")
    runs.setdefault(name, []).append(float(value))
ours = {name: statistics.median(values) for name, values in runs.items()}
ceil = {}
try:
    for line in open(sys.argv[2]):
        m = re.match(r"^(.*?)\s{2,}([0-9.]+)", line.rstrip())
        if m:
            ceil[m.group(1).strip()] = float(m.group(2))
except FileNotFoundError:
    pass
pairs = {
    "GET /tickets?limit=25": ["http GET /hello (6 KB) req/s", "sqlite read keyset page 1 (2 readers) reads/s"],
    "GET /tickets?limit=25 deep page": ["http GET /hello (6 KB) req/s", "sqlite read keyset page 10000 reads/s"],
    "GET /tickets/{id}": ["http GET /hello (6 KB) req/s"],
    "search rare term, 1 client": [],
    "search 10% term, 1 client": [],
    "search 10% term by date, 1 client": [],
    "search rare term": ["sqlite read keyset page 1 (2 readers) reads/s"],
    "search 10% term": ["sqlite read keyset page 1 (2 readers) reads/s"],
    f"POST /tickets baseline {sys.argv[3]}": ["sqlite write sync=FULL 1thr commits/s"],
    "POST /tickets": ["sqlite write sync=FULL 1thr commits/s", "sqlite write FULL group B=32 (1M db) tickets/s", "http POST /echo (400 B) req/s"],
    "POST /tickets/{id}/messages": ["sqlite write sync=FULL 1thr commits/s", "http POST /echo (400 B) req/s"],
    "mix 90% GET list / 10% POST": ["http GET /hello (6 KB) req/s"],
}
print(f"{'figure':<36} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}   ratio to ceiling")
for name, ceilings in pairs.items():
    rps = ours.get(f"{name} req/s")
    if rps is None:
        continue
    ratios = "; ".join(f"{rps / ceil[c]:.2f}x {c} ({ceil[c]:.0f})" for c in ceilings if c in ceil)
    print(f"{name:<36} {rps:>8.0f} {ours[f'{name} p50 ms']:>7.2f} {ours[f'{name} p99 ms']:>7.2f}   {ratios}")
first, deep = ours.get("GET /tickets?limit=25 req/s"), ours.get("GET /tickets?limit=25 deep page req/s")
if first and deep:
    each = ", ".join(f"{d / f:.2f}" for f, d in zip(runs["GET /tickets?limit=25 req/s"], runs["GET /tickets?limit=25 deep page req/s"]))
    print(f"{'deep page / first page':<36} {deep / first:>8.2f}   (medians of 3 alternating runs; each pair: {each})")
new, old = ours.get("POST /tickets req/s"), ours.get(f"POST /tickets baseline {sys.argv[3]} req/s")
if new and old:
    each = ", ".join(f"{n / o:.2f}" for n, o in zip(runs["POST /tickets req/s"], runs[f"POST /tickets baseline {sys.argv[3]} req/s"]))
    print(f"{'POST /tickets / baseline':<36} {new / old:>8.2f}   (medians of 3 alternating runs; each pair: {each})")
print(f"{'server peak RSS (VmHWM)':<36} {ours['server peak RSS MB']:>6.1f} MB")
for name in ("threada", "baseline"):
    if f"{name} bulk-load tickets/s" in ours:
        print(f"{name + ' bulk-load':<36} {ours[f'{name} bulk-load tickets/s']:>8.0f} tickets/s")
PY
if [ -s "$CEIL" ]; then echo; cat "$CEIL"; fi
