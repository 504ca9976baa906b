#!/usr/bin/env bash
# Runs the whole test suite, starting what it needs:
# - a private PostgreSQL server (initdb into a temporary folder, -A trust,
#   127.0.0.1 on a free port, run as the `postgres` user when we are root),
#   stopped again on exit; PostgreSQL is installed with apt when missing;
# - Chromium and ChromeDriver for the browser test, installed when missing;
# - PgBouncer, `openssl` and `ps`, installed when missing: the PostgreSQL
#   tests start private servers of their own (TLS with certificates made
#   by `openssl`, a server to pause or stop) and a PgBouncer from the
#   binaries and variables below (tests/support/pg_instance.rs).
#
# Without arguments it then runs scripts/ts-test.sh (the TypeScript client
# and React hook, with npm ci) and scripts/compat.sh (kv beside sqlx,
# diesel and sea-orm, and kv's SQLite tests at both ends of its rusqlite
# range).
# Extra arguments go to `cargo test` instead, and only that runs
# (e.g. `scripts/test.sh --test conformance_sqlite`).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ]; then
    log "PostgreSQL is not installed: installing it"
    apt_install postgresql
fi
PG_BIN="$(pg_bin)"
[ -x "$PG_BIN/initdb" ] || { log "no initdb found under /usr/lib/postgresql"; exit 1; }

# --- Chromium (browser tests) -----------------------------------------------
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "Chromium or ChromeDriver missing: installing them"
    apt_install chromium chromium-driver
fi

# --- PgBouncer, openssl, ps (private servers and poolers of the tests) -----
missing=()
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v openssl >/dev/null || missing+=(openssl)
command -v ps >/dev/null || missing+=(procps)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

PG_TMP="$(mktemp -d /tmp/kv-test-pg.XXXXXX)"
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_TMP"
    as_pg() { runuser -u postgres -- "$@"; }
    PG_USER=postgres
else
    as_pg() { "$@"; }
    PG_USER="$(id -un)"
fi

free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$(( 20000 + RANDOM % 30000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}
PG_PORT="$(free_port)"
PG_DATA="$PG_TMP/data"

stop_pg() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
}
trap stop_pg EXIT

as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U "$PG_USER" -E UTF8 --no-locale --no-sync >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_TMP/server.log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_TMP -c max_connections=300 -c fsync=off" start >/dev/null
log "PostgreSQL running on 127.0.0.1:$PG_PORT (data in $PG_DATA)"

export KV_TEST_POSTGRES_URL="postgres://$PG_USER@127.0.0.1:$PG_PORT/postgres"
# For tests that restart the server (watch/replica resynchronisation).
export KV_TEST_PG_CTL="$PG_BIN/pg_ctl"
export KV_TEST_PG_DATA="$PG_DATA"
export KV_TEST_PG_RUN_AS="$PG_USER"
export KV_TEST_PG_LOG="$PG_TMP/server.log"
export KV_TEST_PG_OPTS="-h 127.0.0.1 -p $PG_PORT -k $PG_TMP -c max_connections=300 -c fsync=off"
export CHROMEDRIVER="$(command -v chromedriver)"
export CHROME="$(command -v chromium)"

cargo test --workspace --all-features "$@"
if [ "$#" -eq 0 ]; then
    scripts/ts-test.sh
    scripts/compat.sh
fi
