#!/usr/bin/env bash
# kafka.sh — a single-node Apache Kafka (KRaft, broker+controller in one JVM)
# on 127.0.0.1, from jars fetched from Maven Central. For CI and for trying
# pullsched against a real Kafka; the embedded `pullsched broker` needs none
# of this.
#
# Usage: scripts/kafka.sh start|stop|status|wait|fetch|logs|clean
#   start   fetch the jars (once), format storage (once), start the broker in
#           the background and wait until it answers. Does nothing if it runs.
#   stop    stop it (SIGTERM, a clean shutdown; SIGKILL after 60 s).
#   status  exit 0 and say so if the broker runs and answers, 1 otherwise.
#   wait    poll until the broker answers; fail with the log tail if it
#           dies or does not answer within KAFKA_WAIT_SECS.
#   fetch   only fetch the jars (mvn dependency:copy-dependencies).
#   logs    print the tail of the broker's log.
#   clean   stop it and delete its data (the jars stay).
#
# Needs: bash, Java 17+, Maven. Environment knobs (defaults in brackets):
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13 version [3.9.2]
#   KAFKA_DIR              state: jars, data, logs, pid file [<repo>/.kafka]
#   KAFKA_PORT             client (PLAINTEXT) port [9092]
#   KAFKA_CONTROLLER_PORT  KRaft controller port [KAFKA_PORT+1]
#   KAFKA_HEAP_OPTS        JVM heap [-Xms256m -Xmx512m]
#   KAFKA_WAIT_SECS        how long `wait` waits for the broker [120]
#   KAFKA_MVN_ARGS         extra Maven arguments, e.g. -Dmaven.repo.local=...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

KAFKA_VERSION=${KAFKA_VERSION:-3.9.2}
KAFKA_DIR=${KAFKA_DIR:-$repo/.kafka}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
KAFKA_WAIT_SECS=${KAFKA_WAIT_SECS:-120}
KAFKA_MVN_ARGS=${KAFKA_MVN_ARGS:-}

libs=$KAFKA_DIR/libs-$KAFKA_VERSION
data=$KAFKA_DIR/data
logs=$KAFKA_DIR/logs
props=$KAFKA_DIR/server.properties
log4j=$KAFKA_DIR/log4j.properties
pidfile=$KAFKA_DIR/kafka.pid

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"
}

# fetch copies kafka_2.13 and its runtime dependencies into $libs once.
fetch() {
	if [[ -f $libs/.complete ]]; then
		return 0
	fi
	need mvn "install Maven, e.g. apt-get install -y maven"
	say "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $libs"
	rm -rf "$libs.tmp"
	mkdir -p "$libs.tmp" "$KAFKA_DIR"
	# shellcheck disable=SC2086 # KAFKA_MVN_ARGS is a list of arguments
	if ! mvn -B -q -f "$here/kafka/pom.xml" $KAFKA_MVN_ARGS \
		-Dkafka.version="$KAFKA_VERSION" -Dstyle.color=never \
		dependency:copy-dependencies -DoutputDirectory="$libs.tmp" \
		</dev/null >"$KAFKA_DIR/mvn.log" 2>&1; then
		tail -n 40 "$KAFKA_DIR/mvn.log" >&2
		die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (full log: $KAFKA_DIR/mvn.log)"
	fi
	[[ -f $libs.tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"
	rm -rf "$libs"
	mv "$libs.tmp" "$libs"
	touch "$libs/.complete"
}

write_config() {
	mkdir -p "$data" "$logs"
	cat >"$props" <<EOF
# Written by scripts/kafka.sh on every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
# Same default partition count as the embedded broker (broker.Config.Partitions).
num.partitions=3
auto.create.topics.enable=true
delete.topic.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=67108864
EOF
	cat >"$log4j" <<'EOF'
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
EOF
}

java_run() {
	# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM flags
	java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$log4j" -Dkafka.logs.dir="$logs" \
		-cp "$libs/*" "$@"
}

# format writes KRaft metadata into $data once; later starts reuse it.
format() {
	if [[ -f $data/meta.properties ]]; then
		return 0
	fi
	local id
	# A cluster id is 16 random bytes in URL-safe base64 without padding;
	# like Kafka's own, it must not start with '-' (it would read as a flag).
	id=-
	while [[ $id == -* ]]; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	done
	say "formatting KRaft storage in $data (cluster id $id)"
	if ! java_run kafka.tools.StorageTool format -t "$id" -c "$props" >"$logs/format.log" 2>&1; then
		cat "$logs/format.log" >&2
		die "formatting storage failed"
	fi
}

pid() {
	[[ -f $pidfile ]] || return 1
	local p
	p=$(<"$pidfile")
	[[ $p =~ ^[0-9]+$ ]] || return 1
	# The pid must still be our broker (its command line names our
	# server.properties), not a reused pid or another checkout's Kafka.
	tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | grep -qxF "$props" || return 1
	echo "$p"
}

# probe sends an ApiVersions v0 request (correlation id 7) and checks the
# reply: it answers only once the broker accepts client requests.
probe() {
	local resp
	resp=$(timeout 5 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x07\x00\x04ping" >&3
		head -c 10 <&3 | od -An -tx1 | tr -d " \n"
	' probe "$KAFKA_PORT" 2>/dev/null) || return 1
	# size(4) correlation id(4) error code(2)
	[[ ${resp:8:8} == 00000007 && ${resp:16:4} == 0000 ]]
}

port_open() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' port_open "$1" 2>/dev/null
}

log_tail() {
	if grep -qE '^\[[^]]*\] (ERROR|FATAL) ' "$logs/server.log" 2>/dev/null; then
		say "---- errors in $logs/server.log ----"
		grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$logs/server.log" | tail -n 20 >&2 || true
	fi
	if [[ -s $logs/server.log ]]; then
		say "---- last lines of $logs/server.log ----"
		tail -n 40 "$logs/server.log" >&2 || true
	fi
	if [[ -s $logs/stdout.log ]]; then
		say "---- last lines of $logs/stdout.log ----"
		tail -n 30 "$logs/stdout.log" >&2 || true
	fi
}

wait_ready() {
	local deadline=$((SECONDS + KAFKA_WAIT_SECS))
	while ((SECONDS < deadline)); do
		if probe; then
			say "Apache Kafka $KAFKA_VERSION answers on 127.0.0.1:$KAFKA_PORT"
			return 0
		fi
		if [[ -f $pidfile ]] && ! pid >/dev/null; then
			log_tail
			die "the broker exited during startup"
		fi
		sleep 0.5
	done
	log_tail
	die "the broker did not answer on 127.0.0.1:$KAFKA_PORT within ${KAFKA_WAIT_SECS}s"
}

start() {
	if p=$(pid); then
		say "already running (pid $p)"
		wait_ready
		return 0
	fi
	local port
	for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
		if port_open "$port"; then
			die "127.0.0.1:$port is taken by another process (not this script's broker); stop it or set KAFKA_PORT"
		fi
	done
	need java "install Java 17+, e.g. apt-get install -y openjdk-17-jre-headless"
	fetch
	write_config
	format
	# Keep one previous log, so a failure shows this run's lines only.
	if [[ -f $logs/server.log ]]; then
		mv -f "$logs/server.log" "$logs/server.log.prev"
	fi
	say "starting Apache Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)"
	rm -f "$pidfile"
	# setsid: the broker outlives this shell and ignores its Ctrl-C.
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' start "$pidfile" \
		java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$log4j" -Dkafka.logs.dir="$logs" \
		-cp "$libs/*" kafka.Kafka "$props" \
		</dev/null >"$logs/stdout.log" 2>&1 &
	# Wait for the child to write its pid.
	for _ in $(seq 50); do
		[[ -s $pidfile ]] && break
		sleep 0.1
	done
	wait_ready
}

stop() {
	local p
	if ! p=$(pid); then
		say "not running"
		rm -f "$pidfile"
		return 0
	fi
	say "stopping pid $p"
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 600); do
		if ! kill -0 "$p" 2>/dev/null; then
			rm -f "$pidfile"
			say "stopped"
			return 0
		fi
		sleep 0.1
	done
	say "no clean exit after 60s; killing pid $p"
	kill -KILL "$p" 2>/dev/null || true
	rm -f "$pidfile"
}

status() {
	local p
	if p=$(pid) && probe; then
		say "running (pid $p) and answering on 127.0.0.1:$KAFKA_PORT"
		return 0
	fi
	if p=$(pid); then
		say "running (pid $p) but not answering on 127.0.0.1:$KAFKA_PORT"
		return 1
	fi
	say "not running"
	return 1
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
wait) wait_ready ;;
fetch) fetch ;;
logs) log_tail ;;
clean)
	stop
	rm -rf "$data" "$logs" "$props" "$log4j"
	say "data removed"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
