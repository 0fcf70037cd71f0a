#!/usr/bin/env bash
# chain-ab.sh: compare two pullsched builds' chains on a shared, noisy
# machine by running them AT THE SAME TIME, so that both see the same
# neighbours (docs/BENCHMARKS.md, "Where the CPU goes"). Each build runs
# `bench chain --targets chain` at the given rate; in process (the
# default) each also writes a CPU profile labelled by part, with
# --processes each part is a process and the bench reports its CPU.
#
#   go build -o /tmp/ps-a ./cmd/pullsched   # at the old commit
#   go build -o /tmp/ps-b ./cmd/pullsched   # at the new one
#   scripts/chain-ab.sh /tmp/ps-a /tmp/ps-b 400 [--processes] [--duration 30s]
#
# Prints one line per build: CPU per request (in process: profile
# samples by part; with --processes: ms per request by part), latency,
# and whether the rate was held. Results are in $OUT (default a new
# temporary directory). Repeat it a few times: only pairs where both
# held the rate compare CPU per request (a chain that falls behind
# batches more and spends less per request).
set -euo pipefail

if [ $# -lt 3 ]; then
	echo "usage: $0 binary-a binary-b rate [--processes] [--duration 30s]" >&2
	exit 2
fi
a=$1 b=$2 rate=$3
shift 3
processes=false duration=30s
while [ $# -gt 0 ]; do
	case $1 in
	--processes) processes=true ;;
	--duration) duration=$2; shift ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
OUT=${OUT:-$(mktemp -d /tmp/chain-ab.XXXXXX)}
mkdir -p "$OUT"
load=$(cut -d' ' -f1 /proc/loadavg)

pids=()
for side in a b; do
	bin=$a
	[ $side = b ] && bin=$b
	args=(bench chain --targets chain --rates "$rate" --duration "$duration")
	if $processes; then
		args+=(--processes)
	else
		args+=(--cpuprofile "$OUT/$side.prof")
	fi
	"$bin" "${args[@]}" >"$OUT/$side.txt" 2>"$OUT/$side.err" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

for side in a b; do
	bin=$a
	[ $side = b ] && bin=$b
	lat=$(awk '$1 == "chain" {print "p50=" $4 " p90=" $5 " p99=" $6 " held=" $NF " " $11}' "$OUT/$side.txt")
	cpu=""
	if ! $processes; then
		total=$(go tool pprof -top "$OUT/$side.prof" 2>/dev/null | sed -n 's/.*Total samples = \([0-9.]*m\{0,1\}s\).*/\1/p')
		parts=$(go tool pprof -tags "$OUT/$side.prof" 2>/dev/null |
			awk '$NF ~ /^(controller|scheduler|invoker|broker)$/ {printf "%s=%s ", $NF, $1}')
		cpu="samples=$total $parts"
	fi
	echo "$side ($bin) rate=$rate load=$load $cpu$lat"
done
echo "results in $OUT"
