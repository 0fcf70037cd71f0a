#!/bin/bash
# kafka-broker-api-versions.sh --bootstrap-server HOST:PORT
#
# Stands in for Apache Kafka's script of the same name, which the health
# check in docker-compose.yml runs: it exits 0 only when the broker answers
# an ApiVersions request without error. Unlike the original it starts no
# JVM (a probe every few seconds stays cheap) and prints one line, not the
# version table.
set -uo pipefail
server=
while (($#)); do
	case $1 in
	--bootstrap-server) server=${2:-}; shift 2 || break ;;
	--bootstrap-server=*) server=${1#*=}; shift ;;
	*) shift ;;
	esac
done
server=${server%%,*}
[[ $server == *:* ]] || { echo "usage: $0 --bootstrap-server HOST:PORT" >&2; exit 2; }
host=${server%:*} port=${server##*:}
# ApiVersions v0, correlation id 7, client id "ping"; the answer starts with
# size(4) correlation id(4) error code(2).
resp=$(timeout 5 bash -c '
	exec 3<>"/dev/tcp/$1/$2" || exit 1
	printf "\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x07\x00\x04ping" >&3
	head -c 10 <&3 | od -An -tx1 | tr -d " \n"
' probe "$host" "$port" 2>/dev/null)
if [[ ${resp:8:8} == 00000007 && ${resp:16:4} == 0000 ]]; then
	echo "$server answers ApiVersions"
	exit 0
fi
echo "$server does not answer ApiVersions" >&2
exit 1
