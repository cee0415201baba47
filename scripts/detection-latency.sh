#!/usr/bin/env bash
# Detection latency: runs the detection matrix's planted-bug cells with
# --stop-on-violation, then prints, for every run that found its bug, the time from the
# completion of the op the checker could not linearize to the online check's report, when
# in the run that report came, and the run's wall time (start to verdict).
#
#   scripts/detection-latency.sh [BACKEND] [TRIES] [more test-all flags...]
#   (default: local 4; results under results/latency/test-all/<timestamp>/)
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-local}"
tries="${2:-4}"
shift $(($# < 2 ? $# : 2))
results="${LATENCY_RESULTS:-results/latency}"

cargo build --release --bin faultline --bin raftkv
only=()
for bug in stale-read lost-ack no-fsync lease-clock old-term-commit token-reuse; do
    only+=(--only "$bug")
done
target/release/faultline test-all --backend "$backend" --tries "$tries" \
    --stop-on-violation --results-dir "$results" "${only[@]}" "$@" || true
matrix="$(ls -d "$results"/test-all/*/ | sort | tail -n 1)matrix.json"
python3 - "$matrix" <<'PY'
import json, statistics, sys
from pathlib import Path

matrix = json.load(open(sys.argv[1]))
print(f"\n{sys.argv[1]}")
print(f"{'cell':<40} {'seed':>6} {'verdict':<8} {'op->report':>11} {'report at':>10} {'run wall':>9}")
latencies = []
for cell in matrix["cells"]:
    for t in cell["tries"]:
        if not t.get("run_dir"):
            continue
        r = json.load(open(Path(t["run_dir"]) / "results.json"))
        v = ((r.get("exercised") or {}).get("online") or {}).get("violation")
        lat = at = "-"
        if v and v.get("op_completed_at_ms") is not None:
            ms = v["found_at_ms"] - v["op_completed_at_ms"]
            latencies.append(ms)
            lat, at = f"{ms / 1000:.2f} s", f"{v['found_at_ms'] / 1000:.1f} s"
        elif r["verdict"] == "invalid":
            lat = "at the end"
        print(f"{cell['cell']['name']:<40} {t['seed']:>6} {r['verdict']:<8} {lat:>11} {at:>10} {t['total_ms'] / 1000:>7.1f} s")
if latencies:
    latencies.sort()
    p90 = latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))]
    print(f"\nop -> report over {len(latencies)} runs: median {statistics.median(latencies) / 1000:.2f} s, "
          f"p90 {p90 / 1000:.2f} s, max {latencies[-1] / 1000:.2f} s")
PY
