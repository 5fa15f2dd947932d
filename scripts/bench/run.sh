#!/usr/bin/env bash
# Reproduces the figures of BENCHMARKS.md.
#
#   scripts/bench/run.sh [outdir]
#
# 1. count6.txt:      the issue's command, every sub-benchmark 6 times in a row
# 2. interleaved.txt: ROUNDS rounds of -count 1, so that every round measures
#                     direct, bare and gatehouse within a few seconds of each
#                     other (better on a shared, noisy machine)
# then benchstat (targets as columns) and scripts/bench/ratios.py (medians,
# gatehouse/bare and gatehouse/direct ratios, the issue's targets) on both.
#
# Environment: BENCHTIME (default 1s), ROUNDS (default 6), BENCH (default
# the issue's regexp), SKIP_COUNT6=1 or SKIP_INTERLEAVED=1 to run one half.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${1:-$(mktemp -d /tmp/gatehouse-bench-out-XXXXXX)}
BENCHTIME=${BENCHTIME:-1s}
ROUNDS=${ROUNDS:-6}
BENCH=${BENCH:-GetObject|Object1GiB}
mkdir -p "$OUT"

BENCHSTAT="$(go env GOPATH)/bin/benchstat"
if [ ! -x "$BENCHSTAT" ]; then
  go install golang.org/x/perf/cmd/benchstat@latest
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "go: $(go version)"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

if [ "${SKIP_COUNT6:-}" != 1 ]; then
  go test ./awsproxy -run '^$' -bench "$BENCH" -count 6 -benchtime "$BENCHTIME" -timeout 60m | tee "$OUT/count6.txt"
fi

if [ "${SKIP_INTERLEAVED:-}" != 1 ]; then
  go test -c -o "$OUT/awsproxy.test" ./awsproxy
  : > "$OUT/interleaved.txt"
  for i in $(seq "$ROUNDS"); do
    echo "== round $i/$ROUNDS, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    (cd awsproxy && "$OUT/awsproxy.test" -test.run '^$' -test.bench "$BENCH" -test.count 1 \
      -test.benchtime "$BENCHTIME" -test.timeout 60m) | tee -a "$OUT/interleaved.txt"
  done
fi

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
for f in count6 interleaved; do
  [ -s "$OUT/$f.txt" ] || continue
  "$BENCHSTAT" -col /target "$OUT/$f.txt" > "$OUT/$f.benchstat.txt"
  "$BENCHSTAT" -col /target -filter '/target:(bare OR gatehouse)' "$OUT/$f.txt" > "$OUT/$f.gatehouse-vs-bare.txt"
  python3 scripts/bench/ratios.py "$OUT/$f.txt" > "$OUT/$f.ratios.md"
done
echo "results in $OUT"
