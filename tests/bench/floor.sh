#!/usr/bin/env bash
# awrite against the physical floor and against the peers users would pick,
# all in one run on the same file system (issue 15). Not part of
# `cargo test`: timings do not belong in tests.
#
#   tests/bench/floor.sh [AWRITE_BINARY]   (default: builds target/release/awrite)
#
# The static release artifact is measured the same way:
#   cargo build --release --target x86_64-unknown-linux-musl
#   tests/bench/floor.sh target/x86_64-unknown-linux-musl/release/awrite
#
#   ROUNDS=7      paired rounds per case (median of the per-round ratios)
#   BENCH_DIR=DIR scratch space (default: target/; the file system measured)
#   BIG=0         skip the 2 GiB peak-RSS case
#
# The floor is tests/bench/floor.c, compiled here with `cc -O2`: open,
# write, fsync, rename, directory fsync, plus flock and unlink of FILE.lock,
# with no checks at all. tests/bench/runner.c runs each command N times
# without a shell in between and reports wall time (fork to reap), CPU time
# (user + system from wait4, children included) and peak RSS.
#
# Each round runs awrite and its peer back to back (the order alternates
# between rounds, so drift does not favour either side); the ratio of the
# round is awrite / peer, and the table shows the median of those ratios
# and the median absolute figures. Cases (targets from issue 15):
#   1 KiB durable write, lock included   awrite f < 1k      vs floor f < 1k
#   lock round trip                      awrite-lock x -- true vs flock x.lock true
#   100 MiB from a regular file          awrite --input 100m out
#                                        vs cp 100m tmp; sync tmp; mv tmp out; sync .
#   100 MiB --stream from a pipe         awrite --stream out vs floor out
#   2 GiB --stream from a pipe           peak RSS vs cat > out
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bench=$here/tests/bench
rounds=${ROUNDS:-7}
bin=${1:-}
if [ -z "$bin" ]; then
  (cd "$here" && cargo build --release --quiet)
  bin=$here/target/release/awrite
fi
bin=$(readlink -f "$bin")
[ -x "$bin" ] || { echo "no awrite binary at $bin" >&2; exit 1; }
work=$(mktemp -d "${BENCH_DIR:-$here/target}/awrite-floor.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/floor" "$bench/floor.c"
# The same floor linked statically (no dynamic loader), for comparing a
# static awrite (the release artifacts, .ci/release) like with like.
have_static=0
if cc -O2 -static -o "$work/floor-static" "$bench/floor.c" 2>/dev/null; then have_static=1; fi
cc -O2 -o "$work/runner" "$bench/runner.c"
ln -s "$bin" "$work/awrite"
ln -s "$bin" "$work/awrite-lock"
cd "$work"
run=$work/runner

head -c 1024 /dev/urandom > 1k
head -c 104857600 /dev/urandom > 100m

# pair NAME N RUNNER-INPUT-ARGS :: A... :: B...: ROUNDS paired rounds of N
# runs each; appends "name wall_a wall_b cpu_a cpu_b" lines to $work/raw.
pair() {
  local name=$1 n=$2; shift 2
  local input=() a=() b=()
  while [ "$1" != "::" ]; do input+=("$1"); shift; done
  shift
  while [ "$1" != "::" ]; do a+=("$1"); shift; done
  shift
  b=("$@")
  local r ra rb
  for ((r = 0; r < rounds; r++)); do
    if ((r % 2 == 0)); then
      ra=$("$run" "$n" "${input[@]}" -- "${a[@]}")
      rb=$("$run" "$n" "${input[@]}" -- "${b[@]}")
    else
      rb=$("$run" "$n" "${input[@]}" -- "${b[@]}")
      ra=$("$run" "$n" "${input[@]}" -- "${a[@]}")
    fi
    set -- $ra; local wa=$1 ca=$2
    set -- $rb; local wb=$1 cb=$2
    echo "$name $wa $wb $ca $cb" >> raw
  done
}

# The cp + sync + mv + sync . recipe, as a script (its shell is counted:
# that is what the recipe costs).
cat > cp-sync.sh <<'EOF'
cp 100m out.tmp && sync out.tmp && mv out.tmp out && sync .
EOF

: > raw
pair "1KiB-durable-write" 100 -f 1k :: ./awrite out :: ./floor out
if [ "$have_static" = 1 ]; then
  pair "1KiB-vs-static-floor" 100 -f 1k :: ./awrite out :: ./floor-static out
fi
pair "awrite-lock-true" 200 :: ./awrite-lock x -- true :: flock x.lock true
pair "input-100MiB" 1 :: ./awrite --input 100m out :: sh cp-sync.sh
pair "stream-100MiB-pipe" 2 -p 100m :: ./awrite --stream out :: ./floor out

link=dynamic
file -L "$bin" 2>/dev/null | grep -q 'static' && link=static
echo "awrite floor benchmark: $(nproc) cores, $(df -T . | awk 'NR==2 {print $2}'), binary $bin ($link), $rounds rounds"
printf '%-22s %11s %11s %8s %11s %11s %8s\n' case "wall awrite" "wall peer" ratio "cpu awrite" "cpu peer" ratio
awk '
  function median(arr, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  {
    k = $1; if (!(k in cnt)) order[++nk] = k; c = ++cnt[k]
    wa[k, c] = $2; wb[k, c] = $3; ca[k, c] = $4; cb[k, c] = $5
    rw[k, c] = $2 / $3; rc[k, c] = ($5 > 0) ? $4 / $5 : 0
  }
  END {
    for (i = 1; i <= nk; i++) {
      k = order[i]; n = cnt[k]
      for (j = 1; j <= n; j++) { A[j] = wa[k, j]; B[j] = wb[k, j]; C[j] = ca[k, j]; D[j] = cb[k, j]; R[j] = rw[k, j]; S[j] = rc[k, j] }
      printf "%-22s %9.0fus %9.0fus %7.2fx %9.0fus %9.0fus %7.2fx\n", k, median(A, n), median(B, n), median(R, n), median(C, n), median(D, n), median(S, n)
    }
  }' raw
echo "(peers: floor = tests/bench/floor.c, cc -O2 (-static for the static floor); awrite-lock vs flock(1); --input vs cp+sync+mv+sync .)"

if [ "${BIG:-1}" != 0 ]; then
  # Peak RSS of a 2 GiB stream, durable, against cat > out.
  head -c $((2 << 30)) /dev/zero > 2g
  rm -f 100m
  set -- $("$run" 1 -p 2g -- ./awrite --stream big)
  aw=$3
  rm -f big
  set -- $("$run" 1 -p 2g -o big -- cat)
  ct=$3
  rm -f big 2g
  echo "peak RSS, 2 GiB --stream from a pipe: awrite ${aw} KiB, cat ${ct} KiB, difference $((aw - ct)) KiB (limit 32768)"
fi
