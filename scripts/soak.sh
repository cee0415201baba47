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

# The spread of a batch: verdicts, ops, faults per kind, check and run times.
summarize() {
    python3 - "$1" <<'PY'
import collections, json, statistics, sys
from pathlib import Path

batch = json.load(open(sys.argv[1]))
runs = batch["runs"]
verdicts = collections.Counter(r["verdict"] for r in runs)
kinds, skipped = collections.Counter(), collections.Counter()
for r in runs:
    results = Path(r["run_dir"]) / "results.json"
    if results.is_file():
        x = json.load(open(results)).get("exercised") or {}
        kinds.update(x.get("faults_started", {}))
    skipped.update(r.get("faults_skipped", []))

def spread(key, scale=1.0, unit=""):
    xs = sorted(r[key] / scale for r in runs)
    return f"min {xs[0]:.0f}{unit}, median {statistics.median(xs):.0f}{unit}, max {xs[-1]:.0f}{unit}"

print(f"{sys.argv[1]}: {len(runs)} runs; " + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())))
print(f"  ops per run: {spread('ops')}")
print(f"  faults per run: {spread('faults')}")
print(f"  faults started, all runs: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
if skipped:
    print(f"  runs that skipped a kind: " + ", ".join(f"{k} {n}" for k, n in sorted(skipped.items())))
print(f"  check time: {spread('check_ms', 1, ' ms')}")
print(f"  run time: {spread('total_ms', 1000, ' s')}")
PY
}

cargo build --release --bin faultline --bin raftkv
status=0
for backend in "${backends[@]}"; do
    echo "== soak: $runs runs on $backend, seeds $seed..$((seed + runs - 1))"
    target/release/faultline test --backend "$backend" \
        --nemesis partition,kill,pause,restart,netem,clock,disk,figure8 \
        --nemesis-interval 5s --time-limit 30s \
        --test-count "$runs" --keep-going --seed "$seed" \
        --name "soak-$backend" --results-dir "$results" || status=$?
    summarize "$(ls -d "$results/soak-$backend"/batch-*/ | sort | tail -n 1)batch.json"
done
exit "$status"
