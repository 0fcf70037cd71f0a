#!/usr/bin/env bash
# ci-kafka-extra.sh — the integration tests that need more than one plain
# broker, each against an Apache Kafka that scripts/kafka.sh starts on its
# own ports (never the single broker on 9092) and stops again:
#
#   cluster  three brokers (RF 3, min.insync.replicas 2): it/'s
#            TestCluster* kill one with SIGKILL under load and restart it.
#   secure   a SASL_SSL listener (SCRAM-SHA-256/512, PLAIN, throwaway CA):
#            it/'s TestSecure* connect with right and wrong credentials.
#   kafka3   all of it/ against a single Apache Kafka 3.9.2 (the last 3.x),
#            on KAFKA3_PORT (29392). Not run unless named.
#
# Usage: scripts/ci-kafka-extra.sh [cluster] [secure] [kafka3]
# (default: cluster secure). Prints each step's time; exits non-zero if a
# broker does not start or a test fails. Knobs: those of scripts/kafka.sh
# (KAFKA_VERSION, KAFKA_CLUSTER_PORT, KAFKA_SECURE_PORT, KAFKA_DIR...),
# KAFKA3_VERSION [3.9.2], KAFKA3_PORT [29392].
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
step() { printf '\n=== %s ===\n' "$*"; }

steps=("$@")
((${#steps[@]} > 0)) || steps=(cluster secure)
for s in "${steps[@]}"; do
	case $s in
	cluster | secure | kafka3) ;;
	*)
		echo "ci-kafka-extra.sh: unknown step $s (cluster, secure, kafka3)" >&2
		exit 2
		;;
	esac
done

# The cluster test runs scripts/kafka.sh from it/: a relative KAFKA_DIR
# would name another directory there.
if [[ -n ${KAFKA_DIR:-} ]]; then
	KAFKA_DIR=$(realpath -m "$KAFKA_DIR")
	export KAFKA_DIR
fi
KAFKA3_VERSION=${KAFKA3_VERSION:-3.9.2}
KAFKA3_PORT=${KAFKA3_PORT:-29392}
kafka3() { KAFKA_VERSION=$KAFKA3_VERSION KAFKA_DIR=${KAFKA_DIR:-$PWD/.kafka}/v3 KAFKA_PORT=$KAFKA3_PORT scripts/kafka.sh single "$@"; }

# Whatever this script started is stopped on every exit.
running=()
cleanup() {
	local m
	for m in "${running[@]}"; do
		[[ -n $m ]] || continue
		case $m in
		kafka3) kafka3 stop || true ;;
		*) scripts/kafka.sh "$m" stop || true ;;
		esac
	done
	running=()
}
trap cleanup EXIT

summary=()
total_start=$(now)
for s in "${steps[@]}"; do
	case $s in
	cluster)
		step "three-broker Apache Kafka: a broker killed under load"
		t0=$(now)
		running+=(cluster)
		scripts/kafka.sh cluster start
		start_secs=$(since "$t0")
		brokers=$(scripts/kafka.sh cluster env | sed -n 's/^KAFKA_BROKERS=//p')
		t1=$(now)
		PULLSCHED_IT_CLUSTER=$brokers go test -count=1 -v -run '^TestCluster' ./it/
		test_secs=$(since "$t1")
		scripts/kafka.sh cluster stop
		running=("${running[@]/cluster/}")
		summary+=("cluster: start ${start_secs}s, tests ${test_secs}s")
		;;
	secure)
		step "Apache Kafka with a SASL_SSL listener: SCRAM and PLAIN over TLS"
		t0=$(now)
		running+=(secure)
		scripts/kafka.sh secure start
		start_secs=$(since "$t0")
		secure_env=$(scripts/kafka.sh secure env)
		get() { sed -n "s/^$1=//p" <<<"$secure_env"; }
		t1=$(now)
		PULLSCHED_IT_SECURE=$(get KAFKA_SASL_SSL_BROKERS) PULLSCHED_IT_SECURE_CA=$(get KAFKA_CA_FILE) \
			PULLSCHED_IT_SECURE_USER=$(get KAFKA_SASL_USER) PULLSCHED_IT_SECURE_PASSWORD=$(get KAFKA_SASL_PASSWORD) \
			PULLSCHED_IT_SECURE_MECHANISMS=$(get KAFKA_SASL_MECHANISMS) \
			go test -count=1 -v -run '^TestSecure' ./it/
		test_secs=$(since "$t1")
		scripts/kafka.sh secure stop
		running=("${running[@]/secure/}")
		summary+=("secure: start ${start_secs}s, tests ${test_secs}s")
		;;
	kafka3)
		step "it/ against Apache Kafka $KAFKA3_VERSION"
		t0=$(now)
		running+=(kafka3)
		kafka3 start
		start_secs=$(since "$t0")
		t1=$(now)
		PULLSCHED_IT_BROKERS=127.0.0.1:$KAFKA3_PORT go test -count=1 -v ./it/...
		test_secs=$(since "$t1")
		kafka3 stop
		running=("${running[@]/kafka3/}")
		summary+=("Kafka $KAFKA3_VERSION: start ${start_secs}s, it/ ${test_secs}s")
		;;
	esac
done

step "summary"
printf '%s\n' "${summary[@]}"
echo "total: $(since "$total_start")s"
