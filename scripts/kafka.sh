#!/usr/bin/env bash
# kafka.sh — Apache Kafka (KRaft, each node a broker and a controller in one
# JVM) on 127.0.0.1, from jars fetched from Maven Central. For CI and for
# trying pullsched against a real Kafka; the embedded `pullsched broker`
# needs none of this.
#
# Usage: scripts/kafka.sh [single|cluster|secure] COMMAND [N]
#   Modes (the first word, else KAFKA_MODE, else single):
#   single   one node on KAFKA_PORT (9092), state in KAFKA_DIR (<repo>/.kafka).
#   cluster  three nodes, replication factor 3, min.insync.replicas 2, small
#            heaps; clients on KAFKA_CLUSTER_PORT+0..2 (29292-29294),
#            controllers on +10..12, state in <KAFKA_DIR>/cluster.
#   secure   one node like single plus a SASL_SSL listener (SCRAM-SHA-256,
#            SCRAM-SHA-512, PLAIN) on KAFKA_SECURE_PORT+2 (29094); PLAINTEXT
#            on KAFKA_SECURE_PORT (29092), controller +1; state in
#            <KAFKA_DIR>/secure. KAFKA_SECURE=1 adds the same listener to
#            the other modes (on port+2 in single, +20..22 in cluster).
#   Commands:
#   start [N]    fetch the jars (once), format storage (once), start the
#                node(s) in the background and wait until they answer.
#                Running nodes are left alone.
#   stop [N]     stop (SIGTERM, a clean shutdown; SIGKILL after 60 s).
#   status [N]   exit 0 if every node runs and answers, 1 otherwise.
#   wait [N]     poll until the node(s) answer; fail with the log tail if one
#                dies or does not answer within KAFKA_WAIT_SECS.
#   kill N       SIGKILL node N (a crash: no clean shutdown) and wait until
#                it is gone.
#   restart N    stop node N if it runs, start it again, wait until it answers.
#   env          print the shell variables a client needs (brokers; with the
#                SASL_SSL listener, its address, CA file, user and password).
#   fetch        only fetch the jars (mvn dependency:copy-dependencies).
#   logs [N]     print the tail of the node's log.
#   clean        stop everything of the mode and delete its data and
#                certificates (the jars stay).
#   N is a node number, 1..3 in cluster mode, 1 otherwise; without it a
#   command applies to every node of the mode.
#
# The SASL_SSL listener's certificates come from a throwaway CA made with
# openssl at the first start, in <state>/tls (ca.pem is what clients trust;
# the broker's certificate names localhost and 127.0.0.1). Its SCRAM user is
# written into the KRaft metadata when the storage is formatted; user and
# password are in <state>/tls/client.env (shell) and client.properties (Java
# clients). `start` prints where they are.
#
# Needs: bash, Java 17+, Maven; openssl for the SASL_SSL listener.
# Environment knobs (defaults in brackets):
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13 version [4.4.0]; 3.x
#                          works too (3.9.2 is the last of that line)
#   KAFKA_MODE             single, cluster or secure [single]
#   KAFKA_DIR              jars, and single mode's state [<repo>/.kafka]
#   KAFKA_PORT             single: client (PLAINTEXT) port [9092]
#   KAFKA_CONTROLLER_PORT  single: KRaft controller port [KAFKA_PORT+1]
#   KAFKA_CLUSTER_PORT     cluster: node 1's client port [29292]
#   KAFKA_SECURE_PORT      secure: PLAINTEXT port [29092]
#   KAFKA_SECURE           1: add the SASL_SSL listener [1 in secure, else 0]
#   KAFKA_SASL_USER        the SCRAM (and PLAIN) user [pullsched]
#   KAFKA_HEAP_OPTS        JVM heap per node [-Xms256m -Xmx512m; cluster
#                          -Xms128m -Xmx256m]
#   KAFKA_BROKER_SESSION_MS  how long a silent broker keeps its partitions
#                          before the controller fences it [Kafka's, 9000]
#   KAFKA_WAIT_SECS        how long `wait` waits for the node(s) [120]
#   KAFKA_MVN_ARGS         extra Maven arguments, e.g. -Dmaven.repo.local=...
# Keep every port below the kernel's ephemeral range (32768 and up on
# Linux): there, the nodes' own outgoing connections can take a port a node
# is about to listen on.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

mode=${KAFKA_MODE:-single}
case ${1:-} in
single | cluster | secure)
	mode=$1
	shift
	;;
esac
cmd=${1:-}
arg=${2:-}

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_DIR=${KAFKA_DIR:-$repo/.kafka}
KAFKA_WAIT_SECS=${KAFKA_WAIT_SECS:-120}
KAFKA_MVN_ARGS=${KAFKA_MVN_ARGS:-}
KAFKA_SASL_USER=${KAFKA_SASL_USER:-pullsched}
major=${KAFKA_VERSION%%.*}
[[ $major =~ ^[0-9]+$ ]] || { echo "kafka.sh: error: KAFKA_VERSION $KAFKA_VERSION is not a version" >&2; exit 1; }

libs=$KAFKA_DIR/libs-$KAFKA_VERSION

# Per mode: the state directory, the node count, each node's ports
# (client_port/controller_port/sasl_port), replication and heap.
case $mode in
single)
	state=$KAFKA_DIR
	nodes=1
	base=${KAFKA_PORT:-9092}
	secure=${KAFKA_SECURE:-0}
	rf=1 min_isr=1
	heap=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
	client_port() { echo "$base"; }
	controller_port() { echo "${KAFKA_CONTROLLER_PORT:-$((base + 1))}"; }
	sasl_port() { echo $((base + 2)); }
	;;
secure)
	state=$KAFKA_DIR/secure
	nodes=1
	base=${KAFKA_SECURE_PORT:-29092}
	secure=${KAFKA_SECURE:-1}
	rf=1 min_isr=1
	heap=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
	client_port() { echo "$base"; }
	controller_port() { echo $((base + 1)); }
	sasl_port() { echo $((base + 2)); }
	;;
cluster)
	state=$KAFKA_DIR/cluster
	nodes=3
	base=${KAFKA_CLUSTER_PORT:-29292}
	secure=${KAFKA_SECURE:-0}
	rf=3 min_isr=2
	heap=${KAFKA_HEAP_OPTS:--Xms128m -Xmx256m}
	client_port() { echo $((base + $1 - 1)); }
	controller_port() { echo $((base + 10 + $1 - 1)); }
	sasl_port() { echo $((base + 20 + $1 - 1)); }
	;;
*)
	echo "kafka.sh: error: KAFKA_MODE $mode is not single, cluster or secure" >&2
	exit 1
	;;
esac
[[ $secure == 0 || $secure == 1 ]] || { echo "kafka.sh: error: KAFKA_SECURE must be 0 or 1" >&2; exit 1; }
tls=$state/tls
marker=$state/formatted

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"
}

# node_dir N: node N's own files (data, logs, config, pid). A single node
# keeps the layout older versions of this script used: all in $state.
node_dir() {
	if ((nodes == 1)); then echo "$state"; else echo "$state/node$1"; fi
}
data_of() { echo "$(node_dir "$1")/data"; }
logs_of() { echo "$(node_dir "$1")/logs"; }
props_of() { echo "$(node_dir "$1")/server.properties"; }
pidfile_of() { echo "$(node_dir "$1")/kafka.pid"; }
if ((major >= 4)); then
	logconf_of() { echo "$(node_dir "$1")/log4j2.xml"; }
	logflag_of() { echo "-Dlog4j2.configurationFile=$(logconf_of "$1")"; }
else
	logconf_of() { echo "$(node_dir "$1")/log4j.properties"; }
	logflag_of() { echo "-Dlog4j.configuration=file:$(logconf_of "$1")"; }
fi

# which_nodes [N]: the node numbers a command applies to.
which_nodes() {
	if [[ -z ${1:-} ]]; then
		seq 1 "$nodes"
		return
	fi
	[[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= nodes)) || die "node $1: $mode mode has nodes 1..$nodes"
	echo "$1"
}

brokers() {
	local n out=
	for n in $(seq 1 "$nodes"); do out+=${out:+,}127.0.0.1:$(client_port "$n"); done
	echo "$out"
}

sasl_brokers() {
	local n out=
	for n in $(seq 1 "$nodes"); do out+=${out:+,}127.0.0.1:$(sasl_port "$n"); done
	echo "$out"
}

# fetch copies kafka_2.13 and its runtime dependencies into $libs once. The
# pom's profile picks the logging backend of the version's line.
fetch() {
	if [[ -f $libs/.complete ]]; then
		return 0
	fi
	need mvn "install Maven, e.g. apt-get install -y maven"
	local profile=kafka4
	((major >= 4)) || profile=kafka3
	say "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $libs"
	rm -rf "$libs.tmp"
	mkdir -p "$libs.tmp" "$KAFKA_DIR"
	# shellcheck disable=SC2086 # KAFKA_MVN_ARGS is a list of arguments
	if ! mvn -B -q -f "$here/kafka/pom.xml" $KAFKA_MVN_ARGS -P "$profile" \
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

# certs makes, once, a throwaway CA and a broker certificate it signs (for
# localhost and 127.0.0.1) in $tls, the PKCS12 keystore the broker reads,
# and the SCRAM user's password; and writes client.env and
# client.properties for clients.
certs() {
	mkdir -p "$tls"
	chmod 700 "$tls"
	if [[ ! -s $tls/password ]]; then
		head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$tls/password"
	fi
	if [[ ! -s $tls/broker.p12 ]]; then
		need openssl "install openssl, e.g. apt-get install -y openssl"
		say "making a throwaway CA and broker certificate in $tls"
		head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$tls/keystore.password"
		(
			cd "$tls"
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout ca.key -out ca.pem -days 30 -subj "/CN=pullsched throwaway test CA" \
				-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout broker.key -out broker.csr -subj "/CN=localhost"
			printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
				"basicConstraints=CA:FALSE" >broker.ext
			openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
				-out broker.pem -days 30 -extfile broker.ext
			openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem \
				-name broker -out broker.p12 -passout "pass:$(<keystore.password)"
		) >"$tls/openssl.log" 2>&1 || {
			cat "$tls/openssl.log" >&2
			die "openssl could not make the certificates"
		}
	fi
	local pw
	pw=$(<"$tls/password")
	cat >"$tls/client.env" <<EOF
# Written by scripts/kafka.sh: how to reach the SASL_SSL listener.
KAFKA_SASL_SSL_BROKERS=$(sasl_brokers)
KAFKA_CA_FILE=$tls/ca.pem
KAFKA_SASL_MECHANISMS=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
KAFKA_SASL_USER=$KAFKA_SASL_USER
KAFKA_SASL_PASSWORD=$pw
EOF
	cat >"$tls/client.properties" <<EOF
# Written by scripts/kafka.sh: a Java client's settings for the SASL_SSL listener.
bootstrap.servers=$(sasl_brokers)
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_SASL_USER" password="$pw";
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
EOF
	chmod 600 "$tls/client.env" "$tls/client.properties" "$tls/password" "$tls/keystore.password"
}

voters() {
	local n out=
	for n in $(seq 1 "$nodes"); do out+=${out:+,}$n@127.0.0.1:$(controller_port "$n"); done
	echo "$out"
}

write_config() {
	local n=$1 props data logs port cport sport listeners advertised
	props=$(props_of "$n") data=$(data_of "$n") logs=$(logs_of "$n")
	port=$(client_port "$n") cport=$(controller_port "$n") sport=$(sasl_port "$n")
	mkdir -p "$data" "$logs"
	listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
	advertised=PLAINTEXT://127.0.0.1:$port
	if ((secure)); then
		listeners+=,SASL_SSL://127.0.0.1:$sport
		advertised+=,SASL_SSL://127.0.0.1:$sport
	fi
	cat >"$props" <<EOF
# Written by scripts/kafka.sh ($mode mode, Kafka $KAFKA_VERSION) on every start; edits are lost.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
# Same default partition count as the embedded broker (broker.Config.Partitions).
num.partitions=3
auto.create.topics.enable=true
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
# Lets schedulers ask for a short group session, so a crashed replica's
# partitions move to the others within ~3 s (issue 13 item 5); Kafka's
# default floor is 6 s.
group.min.session.timeout.ms=1000
log.retention.hours=24
log.segment.bytes=67108864
EOF
	if [[ -n ${KAFKA_BROKER_SESSION_MS:-} ]]; then
		[[ $KAFKA_BROKER_SESSION_MS =~ ^[0-9]+$ ]] || die "KAFKA_BROKER_SESSION_MS must be milliseconds"
		cat >>"$props" <<EOF
# KAFKA_BROKER_SESSION_MS: how long the controller waits for a silent broker
# before fencing it and moving its partition leaderships (Kafka's default is
# 9 s); heartbeats every quarter of it.
broker.session.timeout.ms=$KAFKA_BROKER_SESSION_MS
broker.heartbeat.interval.ms=$((KAFKA_BROKER_SESSION_MS / 4))
EOF
	fi
	if ((nodes > 1)); then
		cat >>"$props" <<'EOF'
# Three JVMs share a small machine: few threads each.
num.network.threads=2
num.io.threads=2
background.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
EOF
	fi
	if ((secure)); then
		local pw kspw
		pw=$(<"$tls/password") kspw=$(<"$tls/keystore.password")
		cat >>"$props" <<EOF
# The SASL_SSL listener: TLS with the throwaway CA's certificate, SCRAM users
# from the metadata (written at format), PLAIN's single user here.
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=$kspw
ssl.key.password=$kspw
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$pw";
EOF
		chmod 600 "$props"
	fi
	if ((major >= 4)); then
		cat >"$(logconf_of "$n")" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka.sh on every start; edits are lost. -->
<Configuration status="warn">
  <Appenders>
    <RollingFile name="file" fileName="${sys:kafka.logs.dir}/server.log" filePattern="${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="state.change.logger" level="warn"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="warn"/>
  </Loggers>
</Configuration>
EOF
	else
		cat >"$(logconf_of "$n")" <<'EOF'
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
	fi
}

jvm_flags() {
	local n=$1
	# shellcheck disable=SC2086 # heap is a list of JVM flags
	echo $heap -XX:+UseG1GC -Djava.awt.headless=true
	if ((nodes > 1)); then
		echo -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1 -XX:CICompilerCount=2
	fi
	echo "$(logflag_of "$n")" -Dkafka.logs.dir="$(logs_of "$n")"
}

# format writes KRaft metadata (and, with the SASL_SSL listener, the SCRAM
# user) into every node's data once, with one cluster id; later starts
# reuse it. Data formatted by another Kafka version or for another
# listener set is throwaway test state and is formatted anew.
format_want() { echo "version=$KAFKA_VERSION secure=$secure user=$KAFKA_SASL_USER"; }

format() {
	local want n
	want=$(format_want)
	if [[ -f $marker && $(<"$marker") == "$want" ]]; then
		local ok=1
		for n in $(seq 1 "$nodes"); do
			[[ -f $(data_of "$n")/meta.properties ]] || ok=0
		done
		((ok)) && return 0
	fi
	if [[ -f $marker ]]; then
		say "storage in $state was formatted with $(<"$marker"); formatting it anew for $want"
	fi
	local id
	# A cluster id is 16 random bytes in URL-safe base64 without padding;
	# like Kafka's own, it must not start with '-' (it would read as a flag).
	id=-
	while [[ $id == -* ]]; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	done
	local extra=()
	if ((secure)); then
		local pw
		pw=$(<"$tls/password")
		extra=(--add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$pw]"
			--add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$pw]")
	fi
	rm -f "$marker"
	# The nodes format side by side: each is a JVM start of a few seconds.
	local pids=() fail=
	for n in $(seq 1 "$nodes"); do
		local data logs
		data=$(data_of "$n") logs=$(logs_of "$n")
		rm -rf "$data"
		mkdir -p "$data" "$logs"
		say "formatting KRaft storage in $data (cluster id $id)"
		# shellcheck disable=SC2046 # jvm_flags is a list of flags
		java $(jvm_flags "$n") -cp "$libs/*" kafka.tools.StorageTool format \
			-t "$id" -c "$(props_of "$n")" "${extra[@]}" >"$logs/format.log" 2>&1 &
		pids+=($!)
	done
	for n in $(seq 1 "$nodes"); do
		if ! wait "${pids[n - 1]}"; then
			grep -v -i password "$(logs_of "$n")/format.log" >&2 || true
			say "formatting storage of node $n failed"
			fail=1
		fi
	done
	[[ -z $fail ]] || die "formatting storage failed"
	echo "$want" >"$marker"
}

pid() {
	local n=$1 pidfile p
	pidfile=$(pidfile_of "$n")
	[[ -f $pidfile ]] || return 1
	p=$(<"$pidfile")
	[[ $p =~ ^[0-9]+$ ]] || return 1
	# The pid must still be our node (its command line names our
	# server.properties), not a reused pid or another checkout's Kafka.
	tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | grep -qxF "$(props_of "$n")" || return 1
	echo "$p"
}

# probe sends an ApiVersions v0 request (correlation id 7) to node N and
# checks the reply: it answers only once the broker accepts client requests.
probe() {
	local resp
	resp=$(timeout 5 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x07\x00\x04ping" >&3
		head -c 10 <&3 | od -An -tx1 | tr -d " \n"
	' probe "$(client_port "$1")" 2>/dev/null) || return 1
	# size(4) correlation id(4) error code(2)
	[[ ${resp:8:8} == 00000007 && ${resp:16:4} == 0000 ]]
}

port_open() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' port_open "$1" 2>/dev/null
}

log_tail() {
	local n=$1 logs
	logs=$(logs_of "$n")
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

# wait_ready N...: every named node answers (and its SASL_SSL port accepts
# connections) within KAFKA_WAIT_SECS.
wait_ready() {
	local deadline=$((SECONDS + KAFKA_WAIT_SECS)) n left=("$@")
	while ((${#left[@]} > 0)); do
		local still=()
		for n in "${left[@]}"; do
			if probe "$n" && { ((!secure)) || port_open "$(sasl_port "$n")"; }; then
				say "node $n: Apache Kafka $KAFKA_VERSION answers on 127.0.0.1:$(client_port "$n")"
				continue
			fi
			if [[ -f $(pidfile_of "$n") ]] && ! pid "$n" >/dev/null; then
				log_tail "$n"
				die "node $n exited during startup"
			fi
			still+=("$n")
		done
		left=("${still[@]}")
		((${#left[@]} == 0)) && break
		if ((SECONDS >= deadline)); then
			for n in "${left[@]}"; do log_tail "$n"; done
			die "node(s) ${left[*]} did not answer within ${KAFKA_WAIT_SECS}s"
		fi
		sleep 0.5
	done
}

# launch N starts node N's JVM in the background, detached from this shell.
launch() {
	local n=$1 logs pidfile port
	logs=$(logs_of "$n") pidfile=$(pidfile_of "$n")
	for port in "$(client_port "$n")" "$(controller_port "$n")" $( ((secure)) && sasl_port "$n"); do
		if port_open "$port"; then
			die "127.0.0.1:$port (node $n) is taken by another process (not this script's Kafka); stop it or change the port knobs"
		fi
	done
	# Keep one previous log, so a failure shows this run's lines only.
	if [[ -f $logs/server.log ]]; then
		mv -f "$logs/server.log" "$logs/server.log.prev"
	fi
	say "starting node $n: Apache Kafka $KAFKA_VERSION on 127.0.0.1:$(client_port "$n") (controller :$(controller_port "$n")$( ((secure)) && echo ", SASL_SSL :$(sasl_port "$n")"))"
	rm -f "$pidfile"
	# setsid: the node outlives this shell and ignores its Ctrl-C.
	# shellcheck disable=SC2046 # jvm_flags is a list of flags
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' start "$pidfile" \
		java $(jvm_flags "$n") -cp "$libs/*" kafka.Kafka "$(props_of "$n")" \
		</dev/null >"$logs/stdout.log" 2>&1 &
	# Wait for the child to write its pid.
	for _ in $(seq 50); do
		[[ -s $pidfile ]] && break
		sleep 0.1
	done
}

print_env() {
	echo "KAFKA_BROKERS=$(brokers)"
	if ((secure)) && [[ -f $tls/client.env ]]; then
		grep -v '^#' "$tls/client.env"
	fi
}

start() {
	local n todo=()
	need java "install Java 17+, e.g. apt-get install -y openjdk-17-jre-headless"
	for n in $(which_nodes "${1:-}"); do
		if p=$(pid "$n"); then
			say "node $n already running (pid $p)"
		else
			todo+=("$n")
		fi
	done
	if ((${#todo[@]} < nodes)) && [[ -f $marker && $(<"$marker") != "$(format_want)" ]]; then
		die "the $mode mode's nodes run with $(<"$marker"), not $(format_want); stop them first"
	fi
	if ((${#todo[@]} > 0)); then
		fetch
		((secure)) && certs
		for n in $(seq 1 "$nodes"); do
			write_config "$n"
		done
		# Formatting needs every node stopped; a node started alone joins
		# the storage it has.
		if ((${#todo[@]} == nodes)); then
			format
		elif [[ ! -f $marker ]]; then
			die "storage in $state is not formatted; start every node of the $mode mode first"
		fi
		for n in "${todo[@]}"; do
			launch "$n"
		done
	fi
	# shellcheck disable=SC2046
	wait_ready $(which_nodes "${1:-}")
	say "brokers: $(brokers)"
	if ((secure)); then
		say "SASL_SSL (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN): $(sasl_brokers); CA file $tls/ca.pem;" \
			"user $KAFKA_SASL_USER, password in $tls/password; all of it for a shell in $tls/client.env," \
			"for a Java client in $tls/client.properties"
	fi
}

# stop_nodes SIGNAL N...: send SIGNAL to each running node, wait until all
# are gone; after 60 s SIGKILL the rest.
stop_nodes() {
	local sig=$1 n p
	shift
	local pids=()
	for n in "$@"; do
		if p=$(pid "$n"); then
			say "node $n: SIG$sig to pid $p"
			kill "-$sig" "$p" 2>/dev/null || true
			pids+=("$n:$p")
		else
			say "node $n not running"
			rm -f "$(pidfile_of "$n")"
		fi
	done
	local i np
	for i in $(seq 600); do
		local alive=()
		for np in "${pids[@]}"; do
			kill -0 "${np#*:}" 2>/dev/null && alive+=("$np")
		done
		pids=("${alive[@]}")
		((${#pids[@]} == 0)) && break
		sleep 0.1
	done
	for np in "${pids[@]}"; do
		say "node ${np%%:*}: no exit after 60s; killing pid ${np#*:}"
		kill -KILL "${np#*:}" 2>/dev/null || true
	done
	for n in "$@"; do
		pid "$n" >/dev/null || rm -f "$(pidfile_of "$n")"
	done
}

status() {
	local n p rc=0
	for n in $(which_nodes "${1:-}"); do
		if p=$(pid "$n") && probe "$n"; then
			say "node $n running (pid $p) and answering on 127.0.0.1:$(client_port "$n")"
		elif p=$(pid "$n"); then
			say "node $n running (pid $p) but not answering on 127.0.0.1:$(client_port "$n")"
			rc=1
		else
			say "node $n not running"
			rc=1
		fi
	done
	return $rc
}

node_arg() {
	[[ -n $arg ]] || die "$cmd needs a node number (1..$nodes)"
	which_nodes "$arg"
}

if [[ -n $arg ]]; then
	which_nodes "$arg" >/dev/null # dies here, not in a subshell, on a bad N
fi

case $cmd in
start) start "$arg" ;;
# shellcheck disable=SC2046
stop) stop_nodes TERM $(which_nodes "$arg") ;;
status) status "$arg" ;;
# shellcheck disable=SC2046
wait) wait_ready $(which_nodes "$arg") ;;
kill)
	n=$(node_arg)
	stop_nodes KILL "$n"
	;;
restart)
	n=$(node_arg)
	stop_nodes TERM "$n"
	start "$n"
	;;
env) print_env ;;
fetch) fetch ;;
logs) for n in $(which_nodes "$arg"); do log_tail "$n"; done ;;
clean)
	# shellcheck disable=SC2046
	stop_nodes TERM $(seq 1 "$nodes")
	for n in $(seq 1 "$nodes"); do
		d=$(node_dir "$n")
		rm -rf "$d/data" "$d/logs" "$d/server.properties" "$d/log4j.properties" "$d/log4j2.xml"
		((nodes == 1)) || rmdir "$d" 2>/dev/null || true
	done
	rm -rf "$tls" "$marker"
	say "data removed"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
