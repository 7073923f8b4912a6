#!/usr/bin/env bash
# Rerunnable write benchmark: awrite against its peers, in one run, on the
# same file system. Not part of `cargo test` (timings do not belong in tests).
#
#   tests/bench/write.sh [AWRITE_BINARY]   (default: builds target/release/awrite)
#
# Prints mean wall time per write for each tool and size, and awrite's ratio
# to the comparable peer: `cat >` (no durability) for --no-fsync, and
# `dd conv=fsync` (+ sync of the directory) for the durable modes. Also peak
# memory (GNU time) for 100 MiB in simple and --stream mode.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
  (cd "$here" && cargo build --release --quiet)
  bin=$here/target/release/awrite
fi
bin=$(readlink -f "$bin")
[ -x "$bin" ] || { echo "no awrite binary at $bin" >&2; exit 1; }
work=$(mktemp -d "${BENCH_DIR:-$here/target}/awrite-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
ln -s "$bin" "$work/awrite"
ln -s "$bin" "$work/awrite-lock"
have_sponge=$(command -v sponge || true)

# mean_ms N CMD...: run CMD N times (input from $work/in), print mean ms.
mean_ms() {
  local n=$1; shift
  local start end
  start=$(date +%s%N)
  for ((i = 0; i < n; i++)); do
    "$@" < "$work/in" || { echo "failed: $*" >&2; exit 1; }
  done
  end=$(date +%s%N)
  awk -v s="$start" -v e="$end" -v n="$n" 'BEGIN { printf "%.3f", (e - s) / n / 1e6 }'
}

w_cat()      { cat > "$work/out"; }
w_dd()       { dd of="$work/out" bs=1M conv=fsync status=none; }
w_sponge()   { sponge "$work/out"; }
w_awrite()   { "$work/awrite" "$work/out"; }
w_awrite_s() { "$work/awrite" --stream "$work/out"; }
w_awrite_n() { "$work/awrite" --no-fsync "$work/out"; }

printf '%-8s %-22s %10s %8s\n' size tool ms/write ratio
for spec in "1K 1024 200" "1M 1048576 50" "100M 104857600 4"; do
  set -- $spec
  label=$1; bytes=$2; n=$3
  head -c "$bytes" /dev/urandom > "$work/in"
  cat_ms=$(mean_ms "$n" w_cat)
  dd_ms=$(mean_ms "$n" w_dd)
  printf '%-8s %-22s %10s %8s\n' "$label" "cat >" "$cat_ms" "-"
  printf '%-8s %-22s %10s %8s\n' "$label" "dd conv=fsync" "$dd_ms" "-"
  if [ -n "$have_sponge" ]; then
    printf '%-8s %-22s %10s %8s\n' "$label" "sponge" "$(mean_ms "$n" w_sponge)" "-"
  fi
  for t in "awrite --no-fsync:w_awrite_n:$cat_ms" "awrite:w_awrite:$dd_ms" "awrite --stream:w_awrite_s:$dd_ms"; do
    name=${t%%:*}; rest=${t#*:}; fn=${rest%%:*}; base=${rest#*:}
    ms=$(mean_ms "$n" "$fn")
    ratio=$(awk -v a="$ms" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-8s %-22s %10s %8s\n' "$label" "$name" "$ms" "$ratio"
  done
done
echo "(ratios: awrite --no-fsync vs cat >; awrite and --stream vs dd conv=fsync)"

if [ -x /usr/bin/time ]; then
  head -c 104857600 /dev/zero > "$work/in"
  for m in "" "--stream"; do
    kib=$( { /usr/bin/time -f %M "$work/awrite" $m --no-fsync "$work/out" < "$work/in"; } 2>&1 )
    echo "peak RSS, 100 MiB input, awrite ${m:-(simple)}: ${kib} KiB"
  done
  kib=$( { /usr/bin/time -f %M cat < "$work/in" > "$work/out"; } 2>&1 )
  echo "peak RSS, 100 MiB input, cat: ${kib} KiB"
fi

# Uncontended lock round trip: take the lock, run `true`, release (and, for
# awrite-lock, delete the lock file), against flock(1) doing the same.
l_flock()  { flock "$work/l.lock" true; }
l_awrite() { "$work/awrite-lock" "$work/l" -- true; }
: > "$work/in"
fl=$(mean_ms 300 l_flock)
aw=$(mean_ms 300 l_awrite)
printf '%-8s %-22s %10s %8s\n' lock "flock(1) true" "$fl" "-"
printf '%-8s %-22s %10s %8s\n' lock "awrite-lock -- true" "$aw" "$(awk -v a="$aw" -v b="$fl" 'BEGIN { printf "%.2fx", a / b }')"
# The lock itself, measured inside awrite (wait_time_ms of "Lock acquired").
head -c 1024 /dev/urandom > "$work/in"
ms=$("$work/awrite" --json -v --no-fsync "$work/out" < "$work/in" 2>&1 | sed -n 's/.*"Lock acquired".*"wait_time_ms":\([0-9]*\).*/\1/p')
echo "uncontended lock acquisition inside awrite: ${ms} ms (integer ms; < 1 ms shows as 0)"
