#!/bin/bash
# As Apache Kafka's script of the same name.
KAFKA_HEAP_OPTS=${KAFKA_TOOLS_HEAP_OPTS:--Xmx128m -XX:TieredStopAtLevel=1} \
	exec /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool "$@"
