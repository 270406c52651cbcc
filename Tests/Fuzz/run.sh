#!/usr/bin/env bash
# Fuzzes the parsers that read peer and file input (FuzzEntryPoints: frames, rpc, recording, handshake) with
# libFuzzer and AddressSanitizer, each for a fixed budget, starting from the corpus in Tests/Fuzz/corpus.
#
#   Tests/Fuzz/run.sh [SECONDS_PER_TARGET=60] [TARGET...]
#
# A crash, a hang (5 s per input) or an input that needs more than 1 GiB stops the run with the input saved as
# Tests/Fuzz/findings/<target>-crash-*; new interesting inputs go to Tests/Fuzz/findings/<target>/ (merge the
# good ones into the corpus with `-merge=1`). The first build takes several minutes (its own build folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(frames rpc recording handshake)

swift build --scratch-path .build-fuzz --product ocpp-relay-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
binary=.build-fuzz/debug/ocpp-relay-fuzz

for target in "${targets[@]}"; do
    findings=Tests/Fuzz/findings/$target
    mkdir -p "$findings"
    echo "== $target: ${seconds}s"
    FUZZ_TARGET=$target "$binary" "$findings" "Tests/Fuzz/corpus/$target" \
        -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -max_len=65536 \
        -artifact_prefix="Tests/Fuzz/findings/$target-" -print_final_stats=1 2>&1 |
        grep -E "^(#[0-9]+ +(DONE|INITED)|==[0-9]+==|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|.*(crash|leak|timeout|oom)-)" || true
    if compgen -G "Tests/Fuzz/findings/$target-*" >/dev/null; then
        echo "$target: findings in Tests/Fuzz/findings/ (replay: FUZZ_TARGET=$target .build/debug/ocpp-relay-fuzz FILE)"
        exit 1
    fi
done
echo "no crash, hang or memory blow-up in ${targets[*]}"
