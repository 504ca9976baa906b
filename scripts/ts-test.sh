#!/usr/bin/env bash
# The TypeScript client's tests (clients/ts), in order:
# 1. `npm ci` (TypeScript, React, React Testing Library, jsdom; nothing
#    else: the client has no runtime dependencies);
# 2. the checked-in build (clients/ts/dist, which the demo serves) is what
#    `tsc` makes of src/ now;
# 3. the demo's scripts type-check against the client and the demo
#    table's generated bindings (clients/ts/tsconfig.demo.json);
# 4. `node --test`: the client against the Rust test server
#    (examples/ts_test_server.rs, built here), the React hook in jsdom,
#    and the compile-fail cases of test-types/.
#
# KV_UPDATE_TS=1 rewrites dist/ and the expected compiler messages instead
# of failing on a difference. The Rust side (the generated bindings are
# current) is `cargo test --test ts_bindings`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[ts-test.sh] %s\n' "$*" >&2; }

# The same flags as scripts/test.sh, so that nothing is rebuilt after it.
cargo build --quiet --workspace --all-features --example ts_test_server
export KV_TS_TEST_SERVER="${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/ts_test_server"

cd clients/ts
npm ci --no-audit --no-fund --loglevel=error

log "checking that dist/ is the build of src/"
rm -rf build
npx tsc -p tsconfig.json --outDir build/dist
if ! diff -r build/dist dist >/dev/null; then
    if [ "${KV_UPDATE_TS:-}" = 1 ]; then
        rm -rf dist && cp -r build/dist dist
        log "dist/ rewritten"
    else
        diff -ru dist build/dist | head -n 40 >&2 || true
        log "clients/ts/dist is not the build of src/: run KV_UPDATE_TS=1 scripts/ts-test.sh and commit dist/"
        exit 1
    fi
fi

log "type-checking the demo's scripts"
npx tsc -p tsconfig.demo.json

log "running the tests"
npx tsc -p tsconfig.test.json
node --test --test-reporter=spec build/test/*.test.js
