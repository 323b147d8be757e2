#!/usr/bin/env bash
# Run a command (the tests) with a local PostgreSQL server: start one with
# scripts/start-postgres.sh, run the command, and stop the server again if this script started
# it, unless other clients are still connected to it. Exits with the command's status.
# Usage: bash scripts/with-postgres.sh COMMAND [ARGS...]   (as root, like start-postgres.sh)

online_clusters() {
    pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" {print $1 "/" $2 "/" $3}'
}

before="$(online_clusters)"
# shellcheck source=scripts/start-postgres.sh
source "$(dirname "$0")/start-postgres.sh" || exit 1

status=0
"$@" || status=$?

for cluster in $(online_clusters); do
    if grep -qxF "$cluster" <<<"$before"; then
        continue  # it was running before: not ours to stop
    fi
    IFS=/ read -r version name port <<<"$cluster"
    others="$(as_postgres psql --quiet --no-psqlrc --port "$port" -tAc \
        "SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")"
    if [ "${others:-0}" -gt 0 ]; then
        echo "PostgreSQL $version ($name) left running: $others other client(s) connected"
    else
        echo "Stopping PostgreSQL $version ($name), started for the tests"
        pg_ctlcluster "$version" "$name" stop
    fi
done
exit "$status"
