#!/usr/bin/env bash
# Benchmark of the linearizability check on long histories: generates (gen_history) and
# checks (`faultline check --json`) a 1M-op single register (20 clients, 1% info ops)
# and a 10M-op 10-key kv (20 clients, 1% info ops), both linearizable by construction,
# recording wall time and peak RSS with /usr/bin/time -v. Figures go to docs/checker.md.
#
#   scripts/bench-streaming.sh [OUT_DIR]     (default target/bench-streaming)
#
# Needs about 3 GiB of disk for the 10M-op history.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-streaming}
mkdir -p "$out"
nice cargo build --release -p faultline -p faultline-checker --example gen_history
gen=target/release/examples/gen_history
faultline=target/release/faultline

# name ops clients keys
bench() {
    local name=$1 ops=$2 clients=$3 keys=$4
    "$gen" "$ops" "$clients" 7 "$keys" >"$out/$name.jsonl"
    local code=0
    /usr/bin/time -v "$faultline" check "$out/$name.jsonl" --model kv --json \
        --timeout 0 --max-memory 4GiB >"$out/$name.json" 2>"$out/$name.time" || code=$?
    local wall rss
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$out/$name.time")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out/$name.time")
    python3 - "$out/$name.json" "$name" "$code" "$wall" "$rss" <<'PY'
import json, sys
path, name, code, wall, rss = sys.argv[1:]
r = json.loads(open(path).read().splitlines()[-1])
lin = r["linearizable"]
s = lin["stats"]
print(f"{name}: exit {code}, verdict {lin['verdict']}, {r['events']} events, wall {wall}, "
      f"peak RSS {int(rss) / 1024 / 1024:.2f} GiB; search {s['elapsed_ms']} ms, "
      f"{s['states_explored']} states, {s.get('segments', 0)} segments, "
      f"peak {s.get('peak_configs', 0)} configurations, widest window "
      f"{s.get('widest_window', 0)} ops, memo peak {s['peak_memory_bytes'] / 2**20:.0f} MiB")
PY
}

bench register-1m 1000000 20 1
bench kv-10m 10000000 20 10
