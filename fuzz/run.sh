#!/usr/bin/env bash
# Coverage-guided fuzzing of every target for SECONDS each (default 60), with libFuzzer via
# cargo-fuzz on nightly. New crashes land in fuzz/artifacts/TARGET/; once fixed, copy the input
# into fuzz/regressions/TARGET/ so tests/fuzz_smoke.rs keeps checking it on stable.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(client_message config youtube_body caption_stream timestamp query_params)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: needs nightly and cargo-fuzz (cargo install cargo-fuzz)" >&2
  exit 2
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=("corpus/$t")
  [[ -d "regressions/$t" ]] && seeds+=("regressions/$t")
  echo "== $t: ${secs}s"
  cargo +nightly fuzz run -O "$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
