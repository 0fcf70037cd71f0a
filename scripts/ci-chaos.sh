#!/usr/bin/env bash
# ci-chaos.sh — the chaos suite's short form against Apache Kafka, as CI
# runs it: starts scripts/kafka.sh if no broker answers on KAFKA_PORT (and
# stops it again afterwards), builds pullsched once, and runs
# `pullsched chaos --short` with the broker-restart scenario wired to
# scripts/kafka.sh stop/start. Exits non-zero when an assertion fails.
#
# Usage: scripts/ci-chaos.sh [extra pullsched chaos flags]
#   e.g. scripts/ci-chaos.sh --scenarios baseline,kill-scheduler
# Knobs: KAFKA_PORT (9092) and the other KAFKA_* of scripts/kafka.sh;
# CHAOS_OUT, where the report (chaos.md, chaos.json) and the parts' logs go
# (default: a new temporary directory); CHAOS_BROKER_RESTART=0 skips the
# broker-restart scenario (it stops the broker other steps may share).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
export KAFKA_PORT=${KAFKA_PORT:-9092}
out=${CHAOS_OUT:-$(mktemp -d -t pullsched-chaos-XXXXXX)}
mkdir -p "$out"

started=
cleanup() {
	if [[ -n $started ]]; then
		"$repo/scripts/kafka.sh" stop || true
	fi
}
trap cleanup EXIT
if ! "$repo/scripts/kafka.sh" status >/dev/null 2>&1; then
	started=1
	"$repo/scripts/kafka.sh" start
fi

go build -o "$out/pullsched" ./cmd/pullsched

restart=()
if [[ ${CHAOS_BROKER_RESTART:-1} != 0 ]]; then
	# The commands run under sh -c with this environment (KAFKA_*).
	restart=(--broker-stop-cmd "'$repo/scripts/kafka.sh' stop" --broker-start-cmd "'$repo/scripts/kafka.sh' start")
fi

"$out/pullsched" chaos --short --bin "$out/pullsched" --brokers "127.0.0.1:$KAFKA_PORT" \
	--work-dir "$out/logs" --json "$out/chaos.json" --markdown "$out/chaos.md" \
	"${restart[@]}" "$@"
