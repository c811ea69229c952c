#!/usr/bin/env bash
# A/B of two server builds under the same load generator, alternating, with the reference
# broadcaster in the same run: 5,000 listeners, 20 lines/s, 10 s, REPS pairs (default 5).
#
#   benches/ab.sh BEFORE_BIN AFTER_BIN
#
# Build the two binaries first, e.g. for a commit and main:
#   git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release)
#   cargo build --release --bin babelcast --example reference_broadcaster
#   benches/ab.sh /tmp/before/target/release/babelcast target/release/babelcast
# The load generator and the reference are this checkout's. Results: target/ab/summary.txt
# (CPU per delivery, p99 and losses of every run), one JSON report per run next to it.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n 2,12p "$0"; exit 2; }
BEFORE=$1; AFTER=$2
REPS=${REPS:-5}; N=${N:-5000}; RATE=${RATE:-20}; SECS=${SECS:-10}
PORT=${PORT:-9281}; RPORT=${RPORT:-9282}
LOAD=target/release/babelcast
REF=target/release/examples/reference_broadcaster
for b in "$BEFORE" "$AFTER" "$LOAD" "$REF"; do [ -x "$b" ] || { echo "missing: $b" >&2; exit 2; }; done
command -v jq >/dev/null || { echo "jq is needed for the summary" >&2; exit 2; }
ulimit -n 20000
OUT=target/ab; mkdir -p $OUT; rm -f $OUT/*.json $OUT/loadavg.txt
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
load() { # name port pid
  echo "$1 load $(cut -d' ' -f1-3 /proc/loadavg)" >> $OUT/loadavg.txt
  $LOAD load -q --url ws://127.0.0.1:$2 --event bench --channels en --token bench-publish-token \
    --server-pid $3 --json -n $N --rate $RATE --duration-secs $SECS > $OUT/$1.json
}
run() { # name bin
  rm -rf $OUT/data
  $2 serve --config benches/bench.toml --bind 127.0.0.1:$PORT --data $OUT/data >>$OUT/server.log 2>&1 &
  local pid=$!; wait_port $PORT || { echo "$2 did not start" >&2; exit 1; }
  load $1 $PORT $pid
  kill -TERM $pid; wait $pid
}
runref() {
  $REF 127.0.0.1:$RPORT >>$OUT/ref.log 2>&1 & local pid=$!
  wait_port $RPORT || { echo "the reference did not start" >&2; exit 1; }
  load $1 $RPORT $pid
  kill $pid; wait $pid
}
for r in $(seq "$REPS"); do
  run before-$r "$BEFORE"
  run after-$r "$AFTER"
  runref ref-$r
done
for k in before after ref; do
  echo "$k cpu/delivery us: $(jq -s '[.[] | .server.cpu_per_delivery_us] | map(.*100|round/100)' $OUT/$k-*.json | tr -d '\n ') p99 ms: $(jq -s '[.[] | .latency.p99_ms]' $OUT/$k-*.json | tr -d '\n ') lost: $(jq -s '[.[] | .missing + .duplicated + .out_of_order] | add' $OUT/$k-*.json)"
done | tee $OUT/summary.txt
