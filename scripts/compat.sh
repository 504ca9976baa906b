#!/usr/bin/env bash
# Checks that kv fits into the apps users already have, and that its SQLite
# backend works with every rusqlite its range admits:
#
# - each app under tests/compat/<name>/ (its own workspace and committed
#   Cargo.lock: kv-runtime by path with default features, beside one other
#   SQLite user) is built with `--locked` and run; the apps share one target
#   directory, $COMPAT_TARGET_DIR (default target/compat);
# - a copy of the workspace, its lockfile moved to the lowest rusqlite of
#   kv-runtime's range and then to the highest, runs kv-runtime's unit tests
#   and the SQLite integration tests, in a target directory of its own (so
#   the lowest and highest ends share it: only rusqlite, SQLite and kv differ).
#
# One line per step; a failing step's log is printed at the end and the
# script exits 1. Logs: $COMPAT_TARGET_DIR/logs/.
#
# Builds here carry no debug information (a failed assertion still names
# its file and line). With CI set (and not `false` or `0`; .ci/run sets
# it, also when run by hand), each build folder is deleted
# once its steps are done (the apps' after the last app, the range's after
# both ends): a cold run otherwise keeps two more builds of tokio and
# SQLite on a disk that already holds the workspace's.
#
#   scripts/compat.sh            # every app, then the workspace at both ends
#   scripts/compat.sh apps       # only the apps
#   scripts/compat.sh range      # only the workspace at both ends
#   scripts/compat.sh sqlx08-sqlite diesel2-sqlite   # the apps named
#
# The sqlx-postgres apps make a round trip through PostgreSQL only when
# KV_TEST_POSTGRES_URL is set (as inside scripts/test.sh); otherwise they
# build a pool and a query without connecting.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
compat_target="${COMPAT_TARGET_DIR:-$root/target/compat}"
logs="$compat_target/logs"
mkdir -p "$logs"
export CARGO_PROFILE_DEV_DEBUG=false

# The SQLite tests of the workspace: kv-suite's test files that open SQLite.
sqlite_tests=(conformance_sqlite sqlite_open sqlite_shared sqlite_processes sqlite_group_commit watch_sqlite replica_local)

failed=()
summary() { printf '%-4s %-22s %-42s %4ss  %s\n' "$@"; }

# "rusqlite X / libsqlite3-sys Y" as locked in the lockfile $1.
locked_sqlite() {
    awk '/^name = "(rusqlite|libsqlite3-sys)"$/ { n = $3; getline; v[n] = $3 }
         END { gsub(/"/, "", v["\"rusqlite\""]); gsub(/"/, "", v["\"libsqlite3-sys\""]);
               printf "rusqlite %s / libsqlite3-sys %s", v["\"rusqlite\""], v["\"libsqlite3-sys\""] }' "$1"
}

run_app() {
    local app="$1" dir="tests/compat/$1" log="$logs/$1.log" start=$SECONDS said
    if [ ! -f "$dir/Cargo.toml" ]; then
        summary FAIL "$app" "no such app" 0 "(tests/compat/$app/Cargo.toml is missing)"
        failed+=("$app")
        return
    fi
    # No backtrace: a failed check's message is then the end of the log.
    if CARGO_TARGET_DIR="$compat_target" RUST_BACKTRACE=0 cargo run --locked --quiet \
        --manifest-path "$dir/Cargo.toml" >"$log" 2>&1; then
        said="$(tail -n 1 "$log")"
        summary PASS "$app" "$(locked_sqlite "$dir/Cargo.lock")" $((SECONDS - start)) "$said"
    else
        said="see $log"
        if grep -q -- "--locked was passed" "$log"; then
            # kv-runtime's dependencies changed: record them, moving nothing else.
            said="stale Cargo.lock: cargo update --manifest-path $dir/Cargo.toml -p kv-runtime"
        fi
        summary FAIL "$app" "$(locked_sqlite "$dir/Cargo.lock")" $((SECONDS - start)) "$said"
        failed+=("$app")
    fi
}

# The bounds of kv-runtime's rusqlite requirement `">=A, <B"`.
rusqlite_req="$(sed -n 's/^rusqlite = { version = "\(>=[^"]*\)".*/\1/p' kv-runtime/Cargo.toml)"
lowest="$(printf '%s' "$rusqlite_req" | sed -n 's/^>=\([0-9.]*\),.*/\1/p')"
case "$lowest" in *.*.*) ;; ?*) lowest="$lowest.0" ;; esac

# Runs the SQLite tests in a copy of the workspace whose lockfile is moved
# to the lowest ("lowest") or newest ("highest") rusqlite of the range.
run_range_end() {
    local end="$1" name="workspace@$1" log="$logs/workspace-$1.log" start=$SECONDS
    local copy="$root/target/compat-workspace/$end"
    if [ -z "$lowest" ]; then
        summary FAIL "$name" "kv-runtime's rusqlite is not \">=A, <B\"" 0 "($rusqlite_req)"
        failed+=("$name")
        return
    fi
    rm -rf "$copy"
    mkdir -p "$copy"
    # Tracked and new files as they are in the work tree, with their times
    # (so that the copy's build stays fresh between runs).
    git ls-files -z --cached --others --exclude-standard |
        tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$copy"
    local tests=()
    for t in "${sqlite_tests[@]}"; do tests+=(--test "$t"); done
    if (
        cd "$copy"
        if [ "$end" = lowest ]; then
            cargo update --quiet -p rusqlite --precise "$lowest"
        else
            cargo update --quiet -p rusqlite
        fi
        # A target directory of its own: a workspace member builds with the
        # same hash from any path, so building the copy in the workspace's
        # own target/ would leave artifacts (and dep-info naming the copy's
        # files) that later builds of the workspace take for fresh.
        export CARGO_TARGET_DIR="$compat_target/range"
        cargo test --locked --all-features -p kv-runtime --lib
        cargo test --locked --all-features -p kv-suite "${tests[@]}"
    ) >"$log" 2>&1; then
        summary PASS "$name" "$(locked_sqlite "$copy/Cargo.lock")" $((SECONDS - start)) \
            "kv-runtime unit tests + ${#sqlite_tests[@]} SQLite test files ($rusqlite_req)"
    else
        summary FAIL "$name" "$(locked_sqlite "$copy/Cargo.lock" 2>/dev/null || true)" \
            $((SECONDS - start)) "see $log"
        failed+=("$name")
    fi
}

all_apps() { for d in tests/compat/*/Cargo.toml; do basename "$(dirname "$d")"; done; }

case "${1:-all}" in
    all) steps=($(all_apps) range:lowest range:highest) ;;
    apps) steps=($(all_apps)) ;;
    range) steps=(range:lowest range:highest) ;;
    *) steps=("$@") ;;
esac

# Under CI, a build folder goes once no later step needs it.
clean_after() {
    case "${CI:-}" in "" | false | 0) return 0 ;; esac
    local i="$1" rest=("${steps[@]:$(($1 + 1))}") s
    case "${steps[$i]}" in
        range:*)
            for s in "${rest[@]}"; do case "$s" in range:*) return 0 ;; esac; done
            rm -rf "$compat_target/range" "$root/target/compat-workspace" ;;
        *)
            for s in "${rest[@]}"; do case "$s" in range:*) ;; *) return 0 ;; esac; done
            rm -rf "$compat_target/debug" ;;
    esac
}

started=$SECONDS
for i in "${!steps[@]}"; do
    step="${steps[$i]}"
    case "$step" in
        range:*) run_range_end "${step#range:}" ;;
        *) run_app "$step" ;;
    esac
    clean_after "$i"
done

for f in "${failed[@]}"; do
    log="$logs/$f.log"
    [ -f "$log" ] || log="$logs/workspace-${f#workspace@}.log"
    [ -f "$log" ] || continue
    printf '\n=== %s (last 40 lines of %s)\n' "$f" "$log"
    tail -n 40 "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
    # A linker killed by SIGBUS or "No space left on device" is a full disk.
    echo
    df -h "$compat_target" "$root/target" 2>/dev/null || true
fi
echo "compat: took $((SECONDS - started))s"
echo "compat: $(( ${#steps[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
