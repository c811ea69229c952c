#!/usr/bin/env bash
# End-to-end bench: the real server and the bare reference broadcaster
# (benches/reference_broadcaster.rs) under the same load generator (`babelcast load`), measured
# in the same run, reported as ratios. See BENCHMARKS.md for what each scenario checks.
#
# usage: benches/e2e.sh [scenario ...]
#   scenarios: fanout slow partial storm audio (the default set), hall, tls, cluster
#   hall:    15,000 listeners at 5 lines/s, HALL_REPS (5) alternating pairs with the reference,
#            then the same with readers slowed by HALL_READ_DELAY_US (10) µs of work per frame;
#            HALL_LOAD_ARGS: more load generator options (e.g. "--on-air-secs 0")
#   tls:     TLS_SIZES ("5000 15000") listeners at 5 lines/s over plain TCP, over the server's
#            own TLS (server.tls_cert) and over TLS terminated by nginx in front of a plain
#            server (if nginx is installed), TLS_REPS (3) rounds alternating the three
#   cluster: 3 nodes + nats-server, CLUSTER_PER_NODE (15,000) listeners per node from one load
#            process each, 1 line/s for CLUSTER_SECS (60) s published on node 1; then the same
#            listeners per node on a single node (no [cluster]) for the cost the cluster adds
# env:   REPS=3 (repetitions, server and reference alternate)  SIZES="1000 5000 15000"
#        DURATION=10 (seconds of publishing)  OUT=target/e2e (JSON reports and summary.txt)
# needs: jq; nats-server for `cluster`; openssl (and nginx, optional) for `tls`; ulimit -n 20000 (one load process opens up to ~19,000
#        sockets). Every run's load average is noted in $OUT/loadavg.txt.
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
NPORT=${NPORT:-9183}  # nats-server (cluster); nodes on NPORT+1 ..
TOKEN=bench-publish-token
mkdir -p "$OUT"
cargo build --release --bin babelcast --example reference_broadcaster >&2
BIN=target/release/babelcast
REF=target/release/examples/reference_broadcaster
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

SERVER_PID=
REF_PID=
EXTRA_PIDS=()
DATA="$OUT/data"
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true
  [[ -n $REF_PID ]] && kill "$REF_PID" 2>/dev/null || true
  for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
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
  "$BIN" serve --config "${CONFIG:-benches/bench.toml}" --bind "127.0.0.1:$SPORT" --data "$DATA" \
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

# The machine's load average when a run starts (other work on the machine skews timings).
note_load() { echo "$1 $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/loadavg.txt"; }

# load NAME PORT PID ARGS...: one load run, JSON report in $OUT/NAME.json
load() {
  local name=$1 port=$2 pid=$3
  shift 3
  note_load "$name"
  echo "== $name: babelcast load $*" >&2
  "$BIN" load -q --url "${SCHEME:-ws}://127.0.0.1:$port" --event bench --channels en --token "$TOKEN" \
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
# values FIELD FILES...: every run's value, sorted, for the spread
values() {
  local field=$1
  shift
  jq -rs "[.[] | $field | . * 100 | round / 100] | sort | map(tostring) | join(\", \")" "$@"
}
# pair_ratios FIELD PREFIX: per alternating pair r, server_r / ref_r, sorted
pair_ratios() {
  local field=$1 prefix=$2 out=()
  for f in "$OUT/$prefix"-server-*.json; do
    local r=${f##*-server-}
    out+=("$(ratio "$(jq "$field" "$f")" "$(jq "$field" "$OUT/$prefix-ref-$r")")")
  done
  printf '%s\n' "${out[@]}" | sort -g | paste -sd, | sed 's/,/, /g'
}
median_of() { printf '%s\n' "$@" | tr ',' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
load_range() { awk -v p="$1" '$1 ~ p {print $2}' "$OUT/loadavg.txt" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {print lo "-" hi}'; }

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

# The hall (issue 16): 15,000 listeners at 5 lines/s, server and reference alternating, then
# the same with every reader slower by HALL_READ_DELAY_US of work per frame.
hall() {
  local n=${HALL_N:-15000} reps=${HALL_REPS:-5}
  for delay in 0 "${HALL_READ_DELAY_US:-10}"; do
    local tag="hall-d$delay"
    for r in $(seq "$reps"); do
      start_server
      load "$tag-server-$r" "$SPORT" "$SERVER_PID" -n "$n" --rate 5 --duration-secs "$DURATION" --read-delay-us "$delay" --source-addrs 4 ${HALL_LOAD_ARGS:-}
      stop_server
      start_ref
      load "$tag-ref-$r" "$RPORT" "$REF_PID" -n "$n" --rate 5 --duration-secs "$DURATION" --read-delay-us "$delay" --source-addrs 4 ${HALL_LOAD_ARGS:-}
      stop_ref
    done
    local s=("$OUT/$tag"-server-*.json) f=("$OUT/$tag"-ref-*.json)
    local cpu_r p99_r
    cpu_r=$(pair_ratios .server.cpu_per_delivery_us "$tag")
    p99_r=$(pair_ratios .latency.p99_ms "$tag")
    printf 'hall %d listeners @ 5 lines/s, readers +%s us/frame, %d pairs (load average %s):\n' "$n" "$delay" "$reps" "$(load_range "$tag")" | tee -a "$SUMMARY"
    printf '  cpu/delivery: server median %.2f us [%s], ref median %.2f us [%s]; pair ratios [%s], median %s\n' \
      "$(median .server.cpu_per_delivery_us "${s[@]}")" "$(values .server.cpu_per_delivery_us "${s[@]}")" \
      "$(median .server.cpu_per_delivery_us "${f[@]}")" "$(values .server.cpu_per_delivery_us "${f[@]}")" \
      "$cpu_r" "$(median_of "$cpu_r")" | tee -a "$SUMMARY"
    printf '  p99: server median %.1f ms [%s], ref median %.1f ms [%s]; pair ratios [%s], median %s\n' \
      "$(median .latency.p99_ms "${s[@]}")" "$(values .latency.p99_ms "${s[@]}")" \
      "$(median .latency.p99_ms "${f[@]}")" "$(values .latency.p99_ms "${f[@]}")" \
      "$p99_r" "$(median_of "$p99_r")" | tee -a "$SUMMARY"
    printf '  rss/idle listener: server median %.0f B [%s], ref %.0f B | lost %s\n' \
      "$(median .server.rss_per_idle_listener_bytes "${s[@]}")" "$(values .server.rss_per_idle_listener_bytes "${s[@]}")" \
      "$(median .server.rss_per_idle_listener_bytes "${f[@]}")" \
      "$(jq -s '[.[] | .missing + .duplicated + .out_of_order] | add' "${s[@]}")" | tee -a "$SUMMARY"
  done
}

# TLS (issue 16): the same hall over plain TCP, the server's own TLS and nginx's, alternating.
tls() {
  local dir pport=$((SPORT + 10)) reps=${TLS_REPS:-3}
  mkdir -p "$OUT/tls"
  dir=$(cd "$OUT/tls" && pwd) # absolute, whether OUT is or not
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  sed "s|^\[server\]|[server]\ntls_cert = \"$dir/cert.pem\"\ntls_key = \"$dir/key.pem\"|" \
    benches/bench.toml >"$dir/bench-tls.toml"
  local proxy=
  if command -v nginx >/dev/null; then
    proxy=nginx
    cat >"$dir/nginx.conf" <<NGINX
daemon off;
worker_processes 2;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 19000; }
http {
  access_log off;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$pport ssl reuseport;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    location / {
      proxy_pass http://127.0.0.1:$SPORT;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 3600s;
      proxy_buffering off;
    }
  }
}
NGINX
  else
    echo "   tls: nginx is not installed; the reverse-proxy runs are skipped" | tee -a "$SUMMARY" >&2
  fi
  for n in ${TLS_SIZES:-5000 15000}; do
    local args=(-n "$n" --rate 5 --duration-secs "$DURATION" --source-addrs 4)
    for r in $(seq "$reps"); do
      start_server
      load "tls-$n-plain-$r" "$SPORT" "$SERVER_PID" "${args[@]}"
      stop_server
      CONFIG="$dir/bench-tls.toml" start_server
      SCHEME=wss load "tls-$n-tls-$r" "$SPORT" "$SERVER_PID" "${args[@]}" --ca-file "$dir/cert.pem"
      stop_server
      if [[ -n $proxy ]]; then
        start_server
        nginx -c "$dir/nginx.conf" -p "$dir" &
        local nginx_pid=$!
        EXTRA_PIDS+=("$nginx_pid")
        wait_port "$pport"
        local workers
        workers=$(pgrep -P "$nginx_pid" | paste -sd,)
        SCHEME=wss load "tls-$n-proxy-$r" "$pport" "$SERVER_PID,$nginx_pid,$workers" "${args[@]}" --ca-file "$dir/cert.pem"
        kill -QUIT "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
        EXTRA_PIDS=()
        stop_server
      fi
    done
    local p=("$OUT/tls-$n"-plain-*.json)
    local pcpu prss pp99
    pcpu=$(median .server.cpu_per_delivery_us "${p[@]}")
    prss=$(median .server.rss_per_idle_listener_bytes "${p[@]}")
    pp99=$(median .latency.p99_ms "${p[@]}")
    printf 'tls %d listeners @ 5 lines/s, %d rounds (load average %s): plain cpu/delivery %.2f us [%s], p99 %.1f ms [%s], %.0f B per idle listener\n' \
      "$n" "$reps" "$(load_range "tls-$n")" "$pcpu" "$(values .server.cpu_per_delivery_us "${p[@]}")" \
      "$pp99" "$(values .latency.p99_ms "${p[@]}")" "$prss" | tee -a "$SUMMARY"
    for kind in tls ${proxy:+proxy}; do
      local k=("$OUT/tls-$n-$kind"-*.json) kcpu kp99 krss
      kcpu=$(median .server.cpu_per_delivery_us "${k[@]}")
      kp99=$(median .latency.p99_ms "${k[@]}")
      krss=$(median .server.rss_per_idle_listener_bytes "${k[@]}")
      printf '  %-5s cpu/delivery %.2f us [%s] (%sx plain), p99 %.1f ms [%s] (%sx), %.0f B per idle listener (%sx) | lost %s\n' \
        "$kind" "$kcpu" "$(values .server.cpu_per_delivery_us "${k[@]}")" "$(ratio "$kcpu" "$pcpu")" \
        "$kp99" "$(values .latency.p99_ms "${k[@]}")" "$(ratio "$kp99" "$pp99")" "$krss" "$(ratio "$krss" "$prss")" \
        "$(jq -s '[.[] | .missing + .duplicated + .out_of_order] | add' "${k[@]}")" | tee -a "$SUMMARY"
    done
  done
}

# cluster_run MODE NODES: nodes (with nats-server when MODE is cluster), one listen-only load
# process per node, then one publisher on node 1; reports in $OUT/cluster-MODE-*.json.
cluster_run() {
  local mode=$1 nodes=$2 per=${CLUSTER_PER_NODE:-15000} secs=${CLUSTER_SECS:-60}
  local config=benches/bench.toml nats_pid= pids=() ports=() listeners=()
  rm -rf "$OUT/cluster-$mode" && mkdir -p "$OUT/cluster-$mode"
  local dir="$OUT/cluster-$mode"
  if [[ $mode == cluster ]]; then
    config=benches/bench-cluster.toml
    nats-server -js -a 127.0.0.1 -p "$NPORT" -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
    nats_pid=$!
    EXTRA_PIDS+=("$nats_pid")
    wait_port "$NPORT"
  fi
  for k in $(seq "$nodes"); do
    local port=$((NPORT + k))
    BABELCAST_NATS_URL="nats://127.0.0.1:$NPORT" BABELCAST_NODE_ID="node$k" \
      "$BIN" serve --config "$config" --bind "127.0.0.1:$port" --data "$dir/data$k" >>"$dir/node$k.log" 2>&1 &
    pids+=($!)
    EXTRA_PIDS+=($!)
    ports+=("$port")
    wait_port "$port"
  done
  for k in $(seq "$nodes"); do
    local i=$((k - 1))
    note_load "cluster-$mode-node$k"
    "$BIN" load -q --url "ws://127.0.0.1:${ports[$i]}" --event bench --channels en --listen-only \
      --ready-file "$dir/ready$k" --target-file "$dir/target" -n "$per" --source-addrs 4 \
      --server-pid "${pids[$i]}" --duration-secs "$secs" --drain-secs 120 --json \
      >"$OUT/cluster-$mode-node$k.json" &
    listeners+=($!)
  done
  for k in $(seq "$nodes"); do
    while [[ ! -f $dir/ready$k ]]; do sleep 0.5; done
  done
  local all
  all=$(IFS=,; echo "${pids[*]}${nats_pid:+,$nats_pid}")
  note_load "cluster-$mode-publisher"
  echo "== cluster $mode: $nodes node(s) x $per listeners, publishing 1 line/s for $secs s on node 1" >&2
  "$BIN" load -q --url "ws://127.0.0.1:${ports[0]}" --event bench --channels en --token "$TOKEN" \
    -n 0 --rate 1 --duration-secs "$secs" --server-pid "$all" --json >"$OUT/cluster-$mode-publisher.json" ||
    echo "   cluster-$mode publisher: LOSS" | tee -a "$SUMMARY" >&2
  jq -r '.last_seqs | map(tostring) | join(",")' "$OUT/cluster-$mode-publisher.json" >"$dir/target.tmp"
  mv "$dir/target.tmp" "$dir/target"
  for p in "${listeners[@]}"; do wait "$p" || echo "   cluster-$mode listeners: LOSS" | tee -a "$SUMMARY" >&2; done
  for p in "${pids[@]}" $nats_pid; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  EXTRA_PIDS=()
}

# Scale-out (issue 16): the same listeners per node on three nodes and on one.
cluster() {
  local per=${CLUSTER_PER_NODE:-15000}
  cluster_run single 1
  cluster_run cluster 3
  local lines
  for mode in single cluster; do
    lines=$(jq '.acked' "$OUT/cluster-$mode-publisher.json")
    printf 'cluster %s (load average %s): %s lines, server CPU %.1f ms per line (nodes%s, publishing window)\n' "$mode" \
      "$(load_range "cluster-$mode")" "$lines" "$(jq ".server.cpu_ms / $lines" "$OUT/cluster-$mode-publisher.json")" \
      "$([[ $mode == cluster ]] && echo ' + nats-server')" | tee -a "$SUMMARY"
    for f in "$OUT/cluster-$mode"-node*.json; do
      jq -r --arg f "${f##*/}" '"  \($f): \(.listeners) listeners, ok=\(.ok) missing=\(.missing) out_of_order=\(.out_of_order) p50 \(.latency.p50_ms) ms p99 \(.latency.p99_ms) ms, \(.server.rss_per_idle_listener_bytes | round) B per idle listener, \(.server.cpu_per_delivery_us * 100 | round / 100) us CPU per delivery"' "$f" | tee -a "$SUMMARY"
    done
  done
  local single cluster
  single=$(jq '.server.cpu_ms / .acked' "$OUT/cluster-single-publisher.json")
  cluster=$(jq '.server.cpu_ms / .acked' "$OUT/cluster-cluster-publisher.json")
  printf 'cluster cost per line: 3 nodes + nats %.1f ms CPU vs 3 x single node %.1f ms: %+.1f ms per line (%+.2f ms per node), %d listeners per node\n' \
    "$cluster" "$(jq -n "3 * $single")" "$(jq -n "$cluster - 3 * $single")" "$(jq -n "($cluster - 3 * $single) / 3")" "$per" | tee -a "$SUMMARY"
}

for s in $SCENARIOS; do
  rm -f "$OUT/$s"-*.json
  "$s"
done
echo
cat "$SUMMARY"
