#!/usr/bin/env bash
# Soak: the release binary for 30 minutes with 5,000 listeners churning (each reconnects with
# since= at random, 10% of them a minute) under steady publishing on 4 channels. Fails unless
# memory stays within 5% of its post-warm-up value, the server's file descriptors return to
# their baseline, and every listener saw every seq of its channel once, in order.
#
#   benches/soak.sh                      # 30 min, 5,000 listeners
#   SOAK_SECS=600 SOAK_LISTENERS=2000 benches/soak.sh
#
# Knobs: SOAK_SECS (1800), SOAK_LISTENERS (5000), SOAK_CHURN_PER_MIN (0.10),
# SOAK_RATE (finals per second per channel, 2), SOAK_WARMUP_SECS (30).
# CI runs the same test for 60 s with 500 listeners (`cargo test --test soak`).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export SOAK_SECS=${SOAK_SECS:-1800}
export SOAK_LISTENERS=${SOAK_LISTENERS:-5000}
export SOAK_WARMUP_SECS=${SOAK_WARMUP_SECS:-30}
exec cargo test --release --test soak -- --nocapture
