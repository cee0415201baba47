#!/usr/bin/env bash
# The adapter path's overhead: the built-in etcd target and the same etcd through the
# Python adapter of targets/etcd, side by side, with no faults, at the same offered rate.
# Prints ok ops/s and the p50/p99 latency of ok reads and writes for each (the workload's
# operations, not the final reads), and the ratios.
#
# Usage: scripts/adapter-overhead.sh [BACKEND] [RATE] [SECONDS] [REPEATS]
#   BACKEND local (default) or docker; RATE offered ops/s (default 400);
#   SECONDS per run (default 20); REPEATS runs per target, alternating (default 2).
# Needs: a release build (cargo build --release --bin faultline), etcd (local) or Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-local}
rate=${2:-400}
seconds=${3:-20}
repeats=${4:-2}
faultline=${FAULTLINE:-target/release/faultline}
out=$(mktemp -d /tmp/faultline-adapter-overhead.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$out"' EXIT

for i in $(seq 1 "$repeats"); do
  for target in etcd targets/etcd; do
    if [ "$target" = etcd ]; then name=builtin-$i; else name=adapter-$i; fi
    "$faultline" test --backend "$backend" --target "$target" --nodes 3 --nemesis none \
      --rate "$rate" --concurrency 8 --op-timeout 2s --time-limit "${seconds}s" --seed "$i" \
      --online-check-every 0s --name "overhead-$name" --results-dir "$out" >/dev/null 2>&1 || {
      echo "run $name failed: see $out/overhead-$name" >&2
      trap - EXIT
      exit 1
    }
  done
done

python3 - "$out" <<'PY'
import json, os, sys
from collections import defaultdict
root = sys.argv[1]
rows = defaultdict(lambda: {"ok": 0, "ms": 0, "lat": defaultdict(list)})
for name in sorted(os.listdir(root)):
    if not name.startswith("overhead-"):
        continue
    run = os.path.join(root, name, "latest")
    target = "built-in etcd" if name.startswith("overhead-builtin-") else "targets/etcd (adapter)"
    r = json.load(open(os.path.join(run, "results.json")))
    workload_ns = r["exercised"]["workload_ms"] * 1_000_000
    rows[target]["ms"] += r["exercised"]["workload_ms"]
    invoked = {}
    for line in open(os.path.join(run, "history.jsonl")):
        e = json.loads(line)
        if not isinstance(e.get("process"), int):
            continue
        if e["type"] == "invoke":
            # The final reads after the workload are not part of the offered load.
            if e["time_ns"] <= workload_ns:
                invoked[e["process"]] = e["time_ns"]
        elif e["type"] == "ok" and e["process"] in invoked:
            rows[target]["ok"] += 1
            rows[target]["lat"][e["f"]].append(e["time_ns"] - invoked[e["process"]])

def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] / 1e6 if xs else float("nan")

print("| target | ok ops/s | read p50 ms | read p99 ms | write p50 ms | write p99 ms |")
print("|---|---|---|---|---|---|")
summary = {}
for target in ("built-in etcd", "targets/etcd (adapter)"):
    row = rows[target]
    ops = row["ok"] / (row["ms"] / 1000)
    r, w = row["lat"]["read"], row["lat"]["write"]
    summary[target] = (ops, q(r, .5), q(r, .99), q(w, .5), q(w, .99))
    print("| %s | %.0f | %.2f | %.2f | %.2f | %.2f |" % ((target,) + summary[target]))
b, a = summary["built-in etcd"], summary["targets/etcd (adapter)"]
print("adapter / built-in: ops/s %.2f, read p50 %.2f, read p99 %.2f, write p50 %.2f, write p99 %.2f"
      % tuple(x / y for x, y in zip(a, b)))
PY
