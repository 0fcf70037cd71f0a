#!/bin/bash
# kafka-run-class.sh CLASS [ARGS...]: run a class from /opt/kafka/libs with
# Kafka's usual JVM knobs (KAFKA_HEAP_OPTS, KAFKA_OPTS).
set -euo pipefail
heap=${KAFKA_HEAP_OPTS:--Xmx256m}
conf=/opt/kafka/config
log_opts=(-Dlog4j.configuration=file:$conf/tools-log4j.properties -Dlog4j2.configurationFile=$conf/tools-log4j2.xml)
if [[ ${1:-} == kafka.Kafka ]]; then
	log_opts=(-Dlog4j.configuration=file:$conf/log4j.properties -Dlog4j2.configurationFile=$conf/log4j2.xml)
fi
# shellcheck disable=SC2086 # the *_OPTS variables are lists of JVM flags
exec java $heap ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:+ExitOnOutOfMemoryError} \
	-Djava.awt.headless=true "${log_opts[@]}" ${KAFKA_OPTS:-} \
	-cp '/opt/kafka/libs/*' "$@"
