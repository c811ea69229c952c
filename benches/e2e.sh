#!/usr/bin/env bash
# End-to-end bench: the real server and the bare reference broadcaster
# (benches/reference_broadcaster.rs) under the same load generator (`babelcast load`), measured
# in the same run, reported as ratios. See BENCHMARKS.md for what each scenario checks.
#
# usage: benches/e2e.sh [scenario ...]       scenarios: fanout slow partial storm audio (default: all)
# env:   REPS=3 (repetitions, server and reference alternate)  SIZES="1000 5000 15000"
#        DURATION=10 (seconds of publishing)  OUT=target/e2e (JSON reports and summary.txt)
# needs: jq, curl; ulimit -n 20000 (one load process opens up to ~19,000 sockets).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 20000
REPS=${REPS:-3}
SIZES=${SIZES:-"1000 5000 15000"}
DURATION=${DURATION:-10}
OUT=${OUT:-target/e2e}
SCENARIOS=${*:-"fanout slow partial storm audio"}
SPORT=${SPORT:-9181}
RPORT=${RPORT:-9182}
TOKEN=bench-publish-token
mkdir -p "$OUT"
cargo build --release --bin babelcast --example reference_broadcaster >&2
BIN=target/release/babelcast
REF=target/release/examples/reference_broadcaster
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

SERVER_PID=
REF_PID=
DATA="$OUT/data"
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true
  [[ -n $REF_PID ]] && kill "$REF_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}

start_server() { # [keep]: keep the transcript store (restart)
  [[ ${1:-} == keep ]] || rm -rf "$DATA"
  "$BIN" serve --config benches/bench.toml --bind "127.0.0.1:$SPORT" --data "$DATA" \
    >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  wait_port "$SPORT"
}
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
start_ref() {
  "$REF" "127.0.0.1:$RPORT" >>"$OUT/reference.log" 2>&1 &
  REF_PID=$!
  wait_port "$RPORT"
}
stop_ref() {
  kill "$REF_PID" 2>/dev/null || true
  wait "$REF_PID" 2>/dev/null || true
  REF_PID=
}

# load NAME PORT PID ARGS...: one load run, JSON report in $OUT/NAME.json
load() {
  local name=$1 port=$2 pid=$3
  shift 3
  echo "== $name: babelcast load $*" >&2
  "$BIN" load -q --url "ws://127.0.0.1:$port" --event bench --channels en --token "$TOKEN" \
    --server-pid "$pid" --json "$@" >"$OUT/$name.json" || echo "   $name: LOSS (exit $?)" | tee -a "$SUMMARY" >&2
  jq -r '"   ok=\(.ok) missing=\(.missing) cpu/delivery=\(.server.cpu_per_delivery_us|.*1000|round/1000)us p99=\(.latency.p99_ms)ms rss/idle=\(.server.rss_per_idle_listener_bytes|round)B"' "$OUT/$name.json" >&2
}

# median FIELD FILES...: the median of a numeric jq path over reports
median() {
  local field=$1
  shift
  jq -s "[.[] | $field] | sort | .[(length - 1) / 2 | floor]" "$@"
}
ratio() { jq -n "($1) / ($2) * 1000 | round / 1000"; }

fanout() {
  for n in $SIZES; do
    local rate=20 extra=()
    if ((n > 10000)); then rate=5; fi
    for r in $(seq "$REPS"); do
      start_server
      load "fanout-$n-server-$r" "$SPORT" "$SERVER_PID" -n "$n" --rate "$rate" --duration-secs "$DURATION" "${extra[@]}"
      stop_server
      start_ref
      load "fanout-$n-ref-$r" "$RPORT" "$REF_PID" -n "$n" --rate "$rate" --duration-secs "$DURATION" "${extra[@]}"
      stop_ref
    done
    local s=("$OUT"/fanout-"$n"-server-*.json) f=("$OUT"/fanout-"$n"-ref-*.json)
    local scpu rcpu sp99 rp99 srss rrss
    scpu=$(median .server.cpu_per_delivery_us "${s[@]}")
    rcpu=$(median .server.cpu_per_delivery_us "${f[@]}")
    sp99=$(median .latency.p99_ms "${s[@]}")
    rp99=$(median .latency.p99_ms "${f[@]}")
    srss=$(median .server.rss_per_idle_listener_bytes "${s[@]}")
    rrss=$(median .server.rss_per_idle_listener_bytes "${f[@]}")
    local lost
    lost=$(jq -s '[.[] | .missing + .duplicated + .out_of_order] | add' "${s[@]}")
    printf 'fanout %5d listeners @ %2d lines/s: cpu/delivery server %.2f us ref %.2f us ratio %s | p99 server %.1f ms ref %.1f ms ratio %s | rss/idle listener server %.0f B ref %.0f B | lost %s\n' \
      "$n" "$rate" "$scpu" "$rcpu" "$(ratio "$scpu" "$rcpu")" "$sp99" "$rp99" "$(ratio "$sp99" "$rp99")" "$srss" "$rrss" "$lost" | tee -a "$SUMMARY"
  done
}

slow() {
  local n=5000
  for r in $(seq "$REPS"); do
    start_server
    load "slow-base-$r" "$SPORT" "$SERVER_PID" -n "$n" --rate 20 --duration-secs "$DURATION"
    stop_server
    start_server
    load "slow-$r" "$SPORT" "$SERVER_PID" -n "$n" --rate 20 --duration-secs "$DURATION" \
      --slow-fraction 0.1 --slow-delay-ms 200 --drain-secs 120
    stop_server
  done
  local base slow lost rss
  base=$(median .latency_fast.p99_ms "$OUT"/slow-base-*.json)
  slow=$(median .latency_fast.p99_ms "$OUT"/slow-[0-9]*.json)
  rss=$(median '.server.rss_end_bytes - .server.rss_idle_bytes' "$OUT"/slow-[0-9]*.json)
  lost=$(jq -s '[.[] | .missing + .duplicated + .out_of_order] | add' "$OUT"/slow-[0-9]*.json)
  printf 'slow 10%% of %d listeners (200 ms/frame): fast p99 %.1f ms vs %.1f ms without slow readers, ratio %s | server RSS growth while publishing %.0f KiB | behind closes %s | lost %s\n' \
    "$n" "$slow" "$base" "$(ratio "$slow" "$base")" "$(jq -n "$rss/1024")" \
    "$(jq -s '[.[].close_behind] | add' "$OUT"/slow-[0-9]*.json)" "$lost" | tee -a "$SUMMARY"
}

partial() {
  local n=5000 args=(-n 5000 --rate 2 --partial-rate 30 --duration-secs "$DURATION")
  for r in $(seq "$REPS"); do
    start_server
    load "partial-server-$r" "$SPORT" "$SERVER_PID" "${args[@]}"
    stop_server
    start_ref
    load "partial-ref-$r" "$RPORT" "$REF_PID" "${args[@]}"
    stop_ref
    # The same flood with 10% slow readers (server only: the reference drops them).
    start_server
    load "partial-slow-$r" "$SPORT" "$SERVER_PID" "${args[@]}" --slow-fraction 0.1 --drain-secs 120
    stop_server
  done
  local scpu rcpu
  scpu=$(median .server.cpu_per_delivery_us "$OUT"/partial-server-*.json)
  rcpu=$(median .server.cpu_per_delivery_us "$OUT"/partial-ref-*.json)
  printf 'partial flood 30/s + 2 lines/s, %d listeners: cpu/frame server %.2f us ref %.2f us ratio %s | partial frames delivered server %s ref %s | with 10%% slow: cpu/frame %.2f us, partials per slow listener %s vs per fast %s | lost %s\n' \
    "$n" "$scpu" "$rcpu" "$(ratio "$scpu" "$rcpu")" \
    "$(median .partial_frames "$OUT"/partial-server-*.json)" "$(median .partial_frames "$OUT"/partial-ref-*.json)" \
    "$(median .server.cpu_per_delivery_us "$OUT"/partial-slow-*.json)" \
    "$(median '.slow_partial_frames / .slow_listeners | round' "$OUT"/partial-slow-*.json)" \
    "$(median '(.partial_frames - .slow_partial_frames) / (.listeners - .slow_listeners) | round' "$OUT"/partial-slow-*.json)" \
    "$(jq -s '[.[] | .missing + .duplicated + .out_of_order] | add' "$OUT"/partial-server-*.json "$OUT"/partial-slow-*.json)" | tee -a "$SUMMARY"
}

storm() {
  local n=5000
  for r in $(seq "$REPS"); do
    start_server
    "$BIN" load -q --url "ws://127.0.0.1:$SPORT" --event bench --channels en --token "$TOKEN" \
      -n "$n" --rate 20 --duration-secs 12 --json --drain-secs 60 >"$OUT/storm-$r.json" &
    local lg=$!
    # Restart the server (SIGTERM: close 1001 to everyone) in the middle of publishing.
    sleep $((8 + n / 2000))
    stop_server
    start_server keep
    wait "$lg" || echo "   storm-$r: LOSS" | tee -a "$SUMMARY" >&2
    stop_server
  done
  printf 'reconnect storm, %d listeners, server restart: all back within %s s (median; max resume %s ms), reconnects %s, lost %s\n' \
    "$n" "$(median .storm_recovery_secs "$OUT"/storm-*.json)" "$(median .resume_time.max_ms "$OUT"/storm-*.json)" \
    "$(median .reconnects "$OUT"/storm-*.json)" \
    "$(jq -s '[.[] | .missing + .duplicated + .out_of_order + .unacked] | add' "$OUT"/storm-*.json)" | tee -a "$SUMMARY"
}

# Sound: 1,000 of 6,000 listeners on one channel ask for it; a feed sends 20 ms packets (50/s)
# while captions run at CAPTION_RATE lines/s. Per repetition, alternating: the server with
# sound, the server without (the caption p99 to compare), the reference with and without
# sound (CPU per delivery; the sound's own CPU per packet is the difference over the packets).
audio() {
  local args=(-n "${AUDIO_N:-6000}" --rate "${CAPTION_RATE:-5}" --duration-secs "$DURATION" --drain-secs 60)
  local sound=(--audio-listeners "${AUDIO_LISTENERS:-1000}")
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$SUMMARY"
  for r in $(seq "$REPS"); do
    start_server
    load "audio-server-$r" "$SPORT" "$SERVER_PID" "${args[@]}" "${sound[@]}"
    stop_server
    start_server
    load "audio-server-base-$r" "$SPORT" "$SERVER_PID" "${args[@]}"
    stop_server
    start_ref
    load "audio-ref-$r" "$RPORT" "$REF_PID" "${args[@]}" "${sound[@]}"
    stop_ref
    start_ref
    load "audio-ref-base-$r" "$RPORT" "$REF_PID" "${args[@]}"
    stop_ref
  done
  local s=("$OUT"/audio-server-[0-9]*.json) sb=("$OUT"/audio-server-base-*.json)
  local f=("$OUT"/audio-ref-[0-9]*.json) fb=("$OUT"/audio-ref-base-*.json)

  local scpu rcpu sp99 bp99 smax late spkt rpkt
  scpu=$(median .server.cpu_per_delivery_us "${s[@]}")
  rcpu=$(median .server.cpu_per_delivery_us "${f[@]}")
  sp99=$(median .latency.p99_ms "${s[@]}")
  bp99=$(median .latency.p99_ms "${sb[@]}")
  smax=$(jq -s '[.[].audio.latency.max_ms] | max' "${s[@]}")
  late=$(jq -s '[.[].audio.late] | add' "${s[@]}")
  spkt=$(jq -n --slurpfile a <(jq -s "[.[].server.cpu_ms] | sort | .[(length-1)/2|floor]" "${s[@]}") \
    --slurpfile b <(jq -s "[.[].server.cpu_ms] | sort | .[(length-1)/2|floor]" "${sb[@]}") \
    --slurpfile n <(jq -s "[.[].audio.received] | sort | .[(length-1)/2|floor]" "${s[@]}") \
    '($a[0] - $b[0]) * 1000 / $n[0]')
  rpkt=$(jq -n --slurpfile a <(jq -s "[.[].server.cpu_ms] | sort | .[(length-1)/2|floor]" "${f[@]}") \
    --slurpfile b <(jq -s "[.[].server.cpu_ms] | sort | .[(length-1)/2|floor]" "${fb[@]}") \
    --slurpfile n <(jq -s "[.[].audio.received] | sort | .[(length-1)/2|floor]" "${f[@]}") \
    '($a[0] - $b[0]) * 1000 / $n[0]')
  printf 'audio %s listeners (%s with sound), %s lines/s + 50 packets/s: cpu/delivery server %.2f us ref %.2f us ratio %s | sound cpu/packet server %.2f us ref %.2f us | sound latency server p50 %.1f p99 %.1f max %.1f ms (ref p99 %.1f) | packets later than 500 ms %s | caption p99 with sound %.1f ms without %.1f ms ratio %s | lost %s\n' \
    "${AUDIO_N:-6000}" "${AUDIO_LISTENERS:-1000}" "${CAPTION_RATE:-5}" "$scpu" "$rcpu" "$(ratio "$scpu" "$rcpu")" "$spkt" "$rpkt" \
    "$(median .audio.latency.p50_ms "${s[@]}")" "$(median .audio.latency.p99_ms "${s[@]}")" "$smax" \
    "$(median .audio.latency.p99_ms "${f[@]}")" "$late" "$sp99" "$bp99" "$(ratio "$sp99" "$bp99")" \
    "$(jq -s '[.[] | .missing + .duplicated + .out_of_order] | add' "${s[@]}" "${sb[@]}")" | tee -a "$SUMMARY"
  for x in "${s[@]}" "${sb[@]}" "${f[@]}" "${fb[@]}"; do
    jq -r --arg f "$(basename "$x")" '"   \($f): cpu/delivery \(.server.cpu_per_delivery_us*100|round/100) us, cpu \(.server.cpu_ms|round) ms, caption p99 \(.latency.p99_ms) ms, sound p99 \(.audio.latency.p99_ms // "-") max \(.audio.latency.max_ms // "-") ms, received \(.audio.received // 0), skipped \(.audio.skipped // 0)"' "$x" | tee -a "$SUMMARY"
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$SUMMARY"
}

for s in $SCENARIOS; do
  rm -f "$OUT/$s"-*.json
  "$s"
done
echo
cat "$SUMMARY"
