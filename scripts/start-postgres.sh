#!/usr/bin/env bash
# Install (Debian's package) and start a local PostgreSQL server without systemd, as root,
# create a test role and database, and export TAP_SPAAZA_USERS_TEST_POSTGRES_* for the tests.
# Source it (`source scripts/start-postgres.sh`) so the variables reach your shell.

pg_user="${TAP_SPAAZA_USERS_TEST_POSTGRES_USER:-spaaza_test}"
pg_password="${TAP_SPAAZA_USERS_TEST_POSTGRES_PASSWORD:-spaaza_test}"
pg_database="${TAP_SPAAZA_USERS_TEST_POSTGRES_DATABASE:-spaaza_test}"

if ! command -v pg_ctlcluster >/dev/null; then
    echo "Installing PostgreSQL from Debian's packages..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

pg_version="$(pg_lsclusters --no-header | awk 'NR == 1 {print $1}')"
pg_cluster="$(pg_lsclusters --no-header | awk 'NR == 1 {print $2}')"
if [ -z "$pg_version" ]; then
    pg_version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    pg_cluster=main
    pg_createcluster "$pg_version" "$pg_cluster" >/dev/null
fi
if ! pg_lsclusters --no-header | awk -v v="$pg_version" -v c="$pg_cluster" \
        '$1 == v && $2 == c {print $4}' | grep -q online; then
    pg_ctlcluster "$pg_version" "$pg_cluster" start
fi
pg_port="$(pg_lsclusters --no-header | awk -v v="$pg_version" -v c="$pg_cluster" \
    '$1 == v && $2 == c {print $3}')"

as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -c "$(printf '%q ' "$@")"; fi
}
psql_admin() {
    as_postgres psql --quiet --no-psqlrc --port "$pg_port" --set ON_ERROR_STOP=1 "$@"
}

if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$pg_user'")" != 1 ]; then
    psql_admin -c "CREATE ROLE \"$pg_user\" LOGIN PASSWORD '$pg_password'"
fi
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$pg_database'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE \"$pg_database\" OWNER \"$pg_user\""
fi

export TAP_SPAAZA_USERS_TEST_POSTGRES_HOST=127.0.0.1
export TAP_SPAAZA_USERS_TEST_POSTGRES_PORT="$pg_port"
export TAP_SPAAZA_USERS_TEST_POSTGRES_USER="$pg_user"
export TAP_SPAAZA_USERS_TEST_POSTGRES_PASSWORD="$pg_password"
export TAP_SPAAZA_USERS_TEST_POSTGRES_DATABASE="$pg_database"
echo "PostgreSQL $pg_version ($pg_cluster) on 127.0.0.1:$pg_port, database $pg_database"
