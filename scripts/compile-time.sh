#!/usr/bin/env bash
# Compile time of #[derive(Kv)]: a generated crate of 100 table structs,
# built with serde's derives only and with serde's and kv's, cold (the
# crate's own artifacts removed; its dependencies, built once, reused),
# several times each, alternating. Prints each build's seconds and, per
# variant, the minimum and median.
#
#   scripts/compile-time.sh [RUNS] [STRUCTS]      (defaults: 5, 100)
#
# The crates live in target/compile-time/ (their own workspace, sharing
# the repository's lockfile and target directory).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
runs="${1:-5}"
structs="${2:-100}"
base="$root/target/compile-time"
mkdir -p "$base"

gen() { # gen NAME WITH_KV
    local dir="$base/$1" kv="$2"
    mkdir -p "$dir/src"
    cat > "$dir/Cargo.toml" <<TOML
[package]
name = "$1"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
kv-runtime = { path = "$root/kv-runtime" }
serde = { version = "1", features = ["derive"] }

[workspace]
TOML
    cp "$root/Cargo.lock" "$dir/Cargo.lock"
    {
        echo "#![allow(dead_code)]"
        if [ "$kv" = 1 ]; then echo "use kv_runtime::Kv;"; fi
        echo "use serde::{Deserialize, Serialize};"
        for i in $(seq 1 "$structs"); do
            if [ "$kv" = 1 ]; then
                echo "#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]"
                if [ $((i % 2)) = 0 ]; then
                    echo "#[kv(table = \"table$i\", keys = [alpha, beta, gamma, delta], write_role = admin, soft_delete)]"
                else
                    echo "#[kv(table = \"table$i\", write_role = admin)]"
                fi
            else
                echo "#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]"
            fi
            echo "pub struct Table$i { pub active: bool, pub message: String, pub count: u32 }"
        done
    } > "$dir/src/lib.rs"
}

gen gen_serde 0
gen gen_kv 1
export CARGO_TARGET_DIR="$root/target" CARGO_INCREMENTAL=0
for name in gen_serde gen_kv; do
    (cd "$base/$name" && cargo build -q 2>&1) # dependencies, once
done
declare -A times
for run in $(seq 1 "$runs"); do
    for name in gen_serde gen_kv; do
        (cd "$base/$name" && cargo clean -q -p "$name" 2>/dev/null || true)
        start=$(date +%s.%N)
        (cd "$base/$name" && cargo build -q)
        end=$(date +%s.%N)
        t=$(echo "$end - $start" | bc)
        times[$name]="${times[$name]:-} $t"
        printf 'run %s %-9s %.2f s (load %s)\n' "$run" "$name" "$t" "$(cut -d' ' -f1 /proc/loadavg)"
    done
done
for name in gen_serde gen_kv; do
    printf '%s: ' "$name"
    printf '%s\n' ${times[$name]} | sort -n | awk '{a[NR]=$1} END {printf "min %.2f s, median %.2f s, max %.2f s\n", a[1], a[int((NR+1)/2)], a[NR]}'
done
