#!/usr/bin/env bash
# Runs every history reader's fuzz target for SECONDS each (default 600), one after the
# other, seeded with the repository's own histories, and prints libFuzzer's last status
# line per target. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); the stable
# toolchain builds the targets with RUSTC_BOOTSTRAP=1, as libFuzzer's sanitizer flags are
# nightly-only. A crash leaves its input under artifacts/<target>/ and stops the script.
#
#   checker/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(jsonl edn jepsen_log auto)
export RUSTC_BOOTSTRAP=1

# Seeds: the conformance corpus and the harness's test histories, by format.
seeds="$(mktemp -d)"
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds"/{jsonl,edn,jepsen_log,auto}
data=../tests/data
find "$data/knossos" -name '*.edn' -exec cp {} "$seeds/edn/" \;
find "$data/porcupine" -name '*.log' -exec cp {} "$seeds/jepsen_log/" \;
cp ../../harness/tests/data/bad-input/*.jsonl "$seeds/jsonl/"
cp "$seeds"/edn/* "$seeds"/jsonl/* "$seeds/auto/"
find "$data/porcupine" -name '*.log' | head -n 5 | xargs -I{} cp {} "$seeds/auto/"

cargo fuzz build -O
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${seconds}s"
    # -rss_limit_mb: a reader must not need more than 2 GiB for any input; -max_len: 64 KiB.
    cargo fuzz run -O "$t" "corpus/$t" "$seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        2>"corpus/$t.log" || { tail -n 40 "corpus/$t.log"; exit 1; }
    grep -E '^#[0-9]+.*DONE|^stat::number_of_executed_units|^stat::peak_rss_mb|^Done' "corpus/$t.log" || tail -n 3 "corpus/$t.log"
done
