#!/usr/bin/env bash
# The demo: a local Spaaza sandbox, two `meltano run`s into DuckDB (a full one, then an
# incremental one after new users arrive), row counts checked against the sandbox, a summary.
# Run it through `make demo`, which installs everything first. Needs no Spaaza credentials.
#
# It changes nothing until it knows it can run: the port must be free and the sandbox up before
# it resets anything. What it resets is its own and goes together: the warehouse
# output/demo.duckdb and the state of Meltano's `demo` environment (ids `demo:...`), with the
# tap-spaaza-users--sandbox extractor. The dev and prod environments' warehouses and bookmarks
# are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_BIN="${VENV_BIN:-.venv/bin}"
MELTANO="${MELTANO:-.venv-meltano/bin/meltano}"
PORT="${SPAAZA_SANDBOX_PORT:-8765}"
USERS="${DEMO_USERS:-50000}"
NEW_USERS="${DEMO_NEW_USERS:-1234}"
DEMO_DIR="${DEMO_DIR:-.demo}"
WAREHOUSE="${DEMO_WAREHOUSE:-output/demo.duckdb}"
EXTRACTOR=tap-spaaza-users--sandbox
STATE_ID="demo:$EXTRACTOR-to-target-duckdb"

export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false
export MELTANO_ENVIRONMENT=demo
export SPAAZA_SANDBOX_PORT="$PORT"  # meltano.yml's demo environment points the extractor there

# Bold headings on a terminal only: a pipe or a log file gets plain text.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
now() { "$VENV_BIN/python" -c 'from datetime import datetime; print(datetime.now().isoformat())'; }

# 1. Can it run? Nothing has been changed yet, and nothing is if the port is taken.
if ! "$VENV_BIN/python" - "$PORT" <<'PY'
import socket, sys
with socket.socket() as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
PY
then
    echo "The demo cannot start its sandbox: port $PORT on 127.0.0.1 is busy (another sandbox" \
        "or program listens there). Nothing was changed: $WAREHOUSE and Meltano's state are as" \
        "they were. Stop that program, or choose another port: SPAAZA_SANDBOX_PORT=8766 make demo" >&2
    exit 1
fi

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR" "$(dirname "$WAREHOUSE")"

say "Starting the Spaaza sandbox with $USERS users on port $PORT"
"$VENV_BIN/spaaza-sandbox" --port "$PORT" --users "$USERS" \
    --ready-file "$DEMO_DIR/sandbox.json" >"$DEMO_DIR/sandbox.log" 2>&1 &
sandbox_pid=$!
stop_sandbox() {
    if kill -0 "$sandbox_pid" 2>/dev/null; then
        kill "$sandbox_pid" && wait "$sandbox_pid" 2>/dev/null || true
        echo "Sandbox stopped."
    fi
}
trap stop_sandbox EXIT

for _ in $(seq 1 300); do
    [ -s "$DEMO_DIR/sandbox.json" ] && break
    if ! kill -0 "$sandbox_pid" 2>/dev/null; then
        echo "The sandbox did not start (nothing was changed: $WAREHOUSE and Meltano's state" \
            "are as they were):" >&2
        cat "$DEMO_DIR/sandbox.log" >&2
        exit 1
    fi
    sleep 0.2
done
[ -s "$DEMO_DIR/sandbox.json" ] || {
    echo "The sandbox did not get ready in 60 s (nothing was changed)" >&2
    exit 1
}
head -n 5 "$DEMO_DIR/sandbox.log"

SANDBOX_URL="$("$VENV_BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' \
    "$DEMO_DIR/sandbox.json")"
TARGET_DUCKDB_FILEPATH="$(cd "$(dirname "$WAREHOUSE")" && pwd)/$(basename "$WAREHOUSE")"
export TARGET_DUCKDB_FILEPATH

# 2. A new sandbox is a new population: the demo's warehouse and its bookmark start again,
#    together (a warehouse kept with a cleared state would double; a state kept with a new
#    warehouse would load only the users added since).
say "Resetting the demo's own warehouse ($WAREHOUSE) and state ($STATE_ID)"
"$MELTANO" state clear --force "$STATE_ID" >>"$DEMO_DIR/meltano.log" 2>&1 || true
rm -f "$WAREHOUSE" "$WAREHOUSE.wal"

summary() { "$VENV_BIN/python" scripts/demo_summary.py --db "$WAREHOUSE" --runs "$DEMO_DIR/runs.json" "$@"; }

sync_and_check() {
    local label="$1" started
    started="$(now)"
    : >"$DEMO_DIR/meltano.log"
    say "$label: meltano --environment=demo run $EXTRACTOR target-duckdb"
    if ! "$MELTANO" run "$EXTRACTOR" target-duckdb >>"$DEMO_DIR/meltano.log" 2>&1; then
        tail -n 40 "$DEMO_DIR/meltano.log" >&2
        echo "meltano run failed: the log is in $DEMO_DIR/meltano.log" >&2
        exit 1
    fi
    grep -E "Created export task|is DONE|Downloaded export|Emitted|Bookmark" "$DEMO_DIR/meltano.log" |
        sed -E 's/^[^]]*\] tap-spaaza-users(--sandbox)? +/  /' | tail -n 5 || true
    "$MELTANO" state get "$STATE_ID" 2>>"$DEMO_DIR/meltano.log" >"$DEMO_DIR/state.json"
    summary check --sandbox "$SANDBOX_URL" --state "$DEMO_DIR/state.json" \
        --label "$label" --started-at "$started"
}

sync_and_check "Run 1 (full)"

say "Adding $NEW_USERS users in the sandbox (POST /_sandbox/users)"
"$VENV_BIN/python" - "$SANDBOX_URL" "$NEW_USERS" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(
    f"{sys.argv[1]}/_sandbox/users", data=json.dumps({"count": int(sys.argv[2])}).encode(),
    headers={"Content-Type": "application/json"}, method="POST",
)
with urllib.request.urlopen(request, timeout=60) as response:
    print(f"Sandbox answered {response.status}")
PY

sync_and_check "Run 2 (incremental)"

say "What landed in $WAREHOUSE (table spaaza.users)"
summary report
echo
echo "State kept by Meltano: $MELTANO state get $STATE_ID"
cat "$DEMO_DIR/state.json"
echo
echo "Query it yourself (table spaaza.users), e.g. users by country:"
query="SELECT country_code, count(*) AS users FROM spaaza.users GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
printf '  %s -c "import duckdb; duckdb.connect(%s, read_only=True).sql(%s).show()"\n' \
    "$VENV_BIN/python" "'$WAREHOUSE'" "'$query'"
