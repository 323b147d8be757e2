#!/usr/bin/env bash
# The demo: a local Spaaza sandbox, two `meltano run`s into DuckDB (a full one, then an
# incremental one after new users arrive), row counts checked against the sandbox, a summary.
# Run it through `make demo`, which installs everything first. Needs no Spaaza credentials.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_BIN="${VENV_BIN:-.venv/bin}"
MELTANO="${MELTANO:-.venv-meltano/bin/meltano}"
PORT="${SPAAZA_SANDBOX_PORT:-8765}"
USERS="${DEMO_USERS:-50000}"
NEW_USERS="${DEMO_NEW_USERS:-1234}"
DEMO_DIR="${DEMO_DIR:-.demo}"
WAREHOUSE="${DEMO_WAREHOUSE:-output/warehouse.duckdb}"
STATE_ID=dev:tap-spaaza-users-to-target-duckdb

export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false
export MELTANO_ENVIRONMENT=dev

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { "$VENV_BIN/python" -c 'from datetime import datetime; print(datetime.now().isoformat())'; }

rm -rf "$DEMO_DIR" "$WAREHOUSE" "$WAREHOUSE.wal"
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
        echo "The sandbox did not start:" >&2
        cat "$DEMO_DIR/sandbox.log" >&2
        exit 1
    fi
    sleep 0.2
done
[ -s "$DEMO_DIR/sandbox.json" ] || { echo "The sandbox did not get ready in 60 s" >&2; exit 1; }
head -n 5 "$DEMO_DIR/sandbox.log"

# The sandbox's demo credentials, exported over anything a local .env may hold.
sandbox_field() {
    "$VENV_BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "$DEMO_DIR/sandbox.json" "$1"
}
SANDBOX_URL="$(sandbox_field url)"
export TAP_SPAAZA_USERS_API_URL="$SANDBOX_URL"
export TAP_SPAAZA_USERS_CHAIN_ID="$(sandbox_field chain_id)"
export TAP_SPAAZA_USERS_ACCESS_TOKEN_ID="$(sandbox_field token_id)"
export TAP_SPAAZA_USERS_ACCESS_TOKEN_SECRET="$(sandbox_field token_secret)"
export TARGET_DUCKDB_FILEPATH="$(cd "$(dirname "$WAREHOUSE")" && pwd)/$(basename "$WAREHOUSE")"
export TARGET_DUCKDB_ADD_METADATA_COLUMNS=true

summary() { "$VENV_BIN/python" scripts/demo_summary.py --db "$WAREHOUSE" --runs "$DEMO_DIR/runs.json" "$@"; }

# A new sandbox means a new population: start from an empty bookmark.
"$MELTANO" state clear --force "$STATE_ID" >/dev/null 2>&1 || true

sync_and_check() {
    local label="$1" started
    started="$(now)"
    : >"$DEMO_DIR/meltano.log"
    say "$label: meltano run tap-spaaza-users target-duckdb"
    if ! "$MELTANO" run tap-spaaza-users target-duckdb >>"$DEMO_DIR/meltano.log" 2>&1; then
        tail -n 40 "$DEMO_DIR/meltano.log" >&2
        echo "meltano run failed: the log is in $DEMO_DIR/meltano.log" >&2
        exit 1
    fi
    grep -E "Created export task|is DONE|Downloaded export|Emitted|Bookmark" "$DEMO_DIR/meltano.log" |
        sed -E 's/^[^]]*\] tap-spaaza-users +/  /' | tail -n 5 || true
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

say "What landed in $WAREHOUSE"
summary report
echo
echo "State kept by Meltano: $MELTANO state get $STATE_ID"
cat "$DEMO_DIR/state.json"
echo
