#!/usr/bin/env bash
# The soak: correct raftkv under every fault kind mixed, RUNS runs of 30 s on each backend
# (Docker and local processes by default), one after the other, on consecutive seeds from
# SEED. Each backend's runs are one `faultline test --test-count` batch, so the summary is
# results/soak-<backend>/batch-<timestamp>/batch.{txt,json,xml}. Expected: every run
# `valid`; an `invalid` or `unknown` run is a bug in raftkv or the harness.
#
#   scripts/soak.sh [RUNS] [BACKEND...]      (default: 100 docker local)
#   SOAK_SEED=1000 SOAK_RESULTS=results scripts/soak.sh 100 local
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100}"
shift || true
backends=("$@")
[ "${#backends[@]}" -gt 0 ] || backends=(docker local)
seed="${SOAK_SEED:-1000}"
results="${SOAK_RESULTS:-results}"

cargo build --release --bin faultline --bin raftkv
status=0
for backend in "${backends[@]}"; do
    echo "== soak: $runs runs on $backend, seeds $seed..$((seed + runs - 1))"
    target/release/faultline test --backend "$backend" \
        --nemesis partition,kill,pause,restart,netem,clock,disk,figure8 \
        --nemesis-interval 5s --time-limit 30s \
        --test-count "$runs" --keep-going --seed "$seed" \
        --name "soak-$backend" --results-dir "$results" || status=$?
done
exit "$status"
