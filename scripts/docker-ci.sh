#!/usr/bin/env bash
# docker-ci.sh — pullsched's container path run for real on a local Docker
# engine, with no image registry: every image is built here from package
# registries (Debian's packages, Maven Central, the Go module proxy).
#
# Usage: scripts/docker-ci.sh [engine|images|it|compose|all|engine-stop|clean|compose-plugin]
#   engine       start a Docker engine if none answers (installs docker.io
#                when dockerd is missing; runs `dockerd $PULLSCHED_CI_DOCKERD_ARGS`
#                in the background, log in $PULLSCHED_CI_CACHE/dockerd.log)
#                and a compose v2 plugin if `docker compose` is missing
#                (built from the github.com/docker/compose/v2 Go module).
#   images       start the engine as above (not the compose plugin), then
#                build what is missing or stale, all tagged
#                under pullsched-ci/ (never a public image's name):
#                  pullsched-ci/debian:<suite>    debootstrap + docker import
#                  pullsched-ci/golang:<go>       the host go's release, from
#                                                 the golang.org/toolchain module
#                  pullsched-ci/kafka:<version>   Debian's JRE + the Kafka jars
#                                                 scripts/kafka.sh fetches
#                  pullsched-ci/pullsched:latest  ./Dockerfile with GO_IMAGE
#                                                 set to pullsched-ci/golang
#                and checks the pullsched image: static binary, non-root,
#                a health check, `pullsched health` run inside it.
#   it           images, then `go test -count=1 -v ./it/...` with the broker
#                started by testcontainers from pullsched-ci/kafka; fails
#                unless the run says it used testcontainers.
#   compose      images (with the compose plugin built in the background
#                meanwhile, if missing), then docker-compose.yml + docker-compose.ci.yml
#                (host network, loopback addresses): up --wait, requests
#                through the controller, one worker killed, the others
#                still answering, `pullsched health` inside a container,
#                down -v.
#   all          images, it, compose (the plugin built in the background as
#                for compose); then stops the engine if this script started
#                it.
#   engine-stop  stop the engine this script started (never another one).
#   clean        delete the pullsched-ci images and build cache, engine-stop,
#                remove the compose plugin this script installed, delete
#                the cache directory: the next run starts cold.
#   compose-plugin  only install the compose plugin (what compose and all
#                run in the background).
# Each step prints its duration; images, it, compose and all end with a
# summary of step durations and image sizes.
#
# Environment knobs (defaults in brackets):
#   PULLSCHED_CI_CACHE        state: dockerd log and pid, compose build,
#                             step logs [/var/cache/pullsched-ci]
#   PULLSCHED_CI_DOCKERD_ARGS [--storage-driver vfs --bridge none]
#   DEBIAN_SUITE              [bookworm]
#   DEBIAN_MIRROR             [the first URIs of /etc/apt/sources.list.d/debian.sources,
#                             else http://deb.debian.org/debian]
#   KAFKA_VERSION             [scripts/kafka.sh's default]
#   COMPOSE_VERSION           compose module version to build [v2.40.3]
#   PULLSCHED_CI_EXTRA_CA_DIR the host's extra CAs (*.crt), added to the
#                             Debian image's trust store
#                             [/usr/local/share/ca-certificates]
#   PULLSCHED_CI_KEEP=1       compose: leave the services up (for debugging)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

CACHE=${PULLSCHED_CI_CACHE:-/var/cache/pullsched-ci}
DOCKERD_ARGS=${PULLSCHED_CI_DOCKERD_ARGS:---storage-driver vfs --bridge none}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
COMPOSE_VERSION=${COMPOSE_VERSION:-v2.40.3}
EXTRA_CA_DIR=${PULLSCHED_CI_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
if [[ -z ${KAFKA_VERSION:-} ]]; then
	KAFKA_VERSION=$(sed -n 's/^KAFKA_VERSION=\${KAFKA_VERSION:-\([0-9][0-9.]*\)}$/\1/p' scripts/kafka.sh | head -n 1)
fi
export KAFKA_VERSION

say() { printf 'docker-ci: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
script_start=$(now)
summary=()
# timed NAME CMD...: run CMD, print and remember how long it took.
timed() {
	local name=$1 t
	shift
	t=$(now)
	say "== $name"
	"$@"
	local secs
	secs=$(since "$t")
	say "== $name: ${secs}s"
	summary+=("$(printf '%-34s %8ss' "$name" "$secs")")
}

apt_updated=
apt_install() {
	command -v apt-get >/dev/null || die "need $* and there is no apt-get"
	if [[ -z $apt_updated ]]; then
		apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---------------------------------------------------------------- engine

engine_answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

dockerd_pidfile=$CACHE/dockerd.pid
# The engine this script starts listens on a socket of its own, so tests
# run outside this script (which look for /var/run/docker.sock) do not
# find it and keep to their usual brokers.
engine_sock=${PULLSCHED_CI_DOCKER_SOCK:-/run/pullsched-ci/docker.sock}
if [[ -z ${DOCKER_HOST:-} && -S $engine_sock ]]; then
	export DOCKER_HOST=unix://$engine_sock
fi

start_engine() {
	if engine_answers; then
		say "Docker engine $(docker version --format '{{.Server.Version}}') answers at ${DOCKER_HOST:-the default socket}"
		return 0
	fi
	if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != "unix://$engine_sock" ]]; then
		die "DOCKER_HOST=$DOCKER_HOST does not answer"
	fi
	command -v docker >/dev/null || apt_install docker.io
	command -v dockerd >/dev/null || apt_install docker.io
	[[ $(id -u) == 0 ]] || die "no Docker engine answers, and starting one needs root"
	mkdir -p "$CACHE"
	mkdir -p "$(dirname "$engine_sock")"
	rm -f "$dockerd_pidfile"
	say "starting dockerd $DOCKERD_ARGS on unix://$engine_sock (log: $CACHE/dockerd.log)"
	# setsid: the engine outlives this shell and ignores its Ctrl-C.
	# shellcheck disable=SC2086 # DOCKERD_ARGS is a list of arguments
	setsid dockerd $DOCKERD_ARGS -H "unix://$engine_sock" --pidfile "$dockerd_pidfile" \
		</dev/null >>"$CACHE/dockerd.log" 2>&1 &
	local starter=$!
	export DOCKER_HOST=unix://$engine_sock
	local i
	for i in $(seq 120); do
		if engine_answers; then
			say "Docker engine $(docker version --format '{{.Server.Version}}') answers (pid $(<"$dockerd_pidfile"), after ${i}x0.5s)"
			say "use it from a shell with: export DOCKER_HOST=$DOCKER_HOST"
			return 0
		fi
		if ! kill -0 "$starter" 2>/dev/null; then
			tail -n 30 "$CACHE/dockerd.log" >&2
			rm -f "$dockerd_pidfile"
			die "dockerd exited during startup"
		fi
		sleep 0.5
	done
	tail -n 30 "$CACHE/dockerd.log" >&2
	die "dockerd did not answer within 60s"
}

# our_dockerd prints the pid of the dockerd this script started, if it runs.
our_dockerd() {
	[[ -f $dockerd_pidfile ]] || return 1
	local p
	p=$(<"$dockerd_pidfile")
	[[ $p =~ ^[0-9]+$ ]] || return 1
	[[ $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) == dockerd* ]] || return 1
	echo "$p"
}

stop_engine() {
	local p
	if ! p=$(our_dockerd); then
		say "no engine started by this script runs"
		rm -f "$dockerd_pidfile"
		return 0
	fi
	local left
	left=$(docker ps -q 2>/dev/null | wc -l)
	if ((left > 0)); then
		say "stopping $left container(s) still running"
		docker ps --format '  {{.Names}} ({{.Image}})' >&2 || true
		# shellcheck disable=SC2046 # container ids
		docker stop -t 10 $(docker ps -q) >/dev/null || true
	fi
	say "stopping dockerd (pid $p)"
	kill -TERM "$p"
	local i
	for i in $(seq 300); do
		if ! kill -0 "$p" 2>/dev/null; then
			rm -f "$dockerd_pidfile"
			say "dockerd stopped"
			return 0
		fi
		sleep 0.1
	done
	say "dockerd did not stop in 30s; killing it"
	kill -KILL "$p" 2>/dev/null || true
	rm -f "$dockerd_pidfile"
}

# docker_build ARGS...: a BuildKit build. Clients from Docker 23 on need the
# buildx plugin for it; the 20.10 client of Debian's docker.io has BuildKit
# built in (DOCKER_BUILDKIT=1).
docker_build() {
	if docker buildx version >/dev/null 2>&1; then
		docker build "$@"
		return
	fi
	local cli v
	for cli in docker /usr/bin/docker; do
		v=$("$cli" version --format '{{.Client.Version}}' 2>/dev/null) || continue
		if [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} < 23)); then
			DOCKER_BUILDKIT=1 BUILDKIT_PROGRESS=plain "$cli" build --progress=plain "$@"
			return
		fi
	done
	[[ -x /usr/bin/docker ]] || apt_install docker.io
	[[ -x /usr/bin/docker ]] && v=$(/usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null) &&
		((${v%%.*} < 23)) || die "no BuildKit-capable docker client: install the buildx plugin"
	DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain "$@"
}

install_compose() {
	if docker compose version >/dev/null 2>&1; then
		say "$(docker compose version)"
		return 0
	fi
	local out=$CACHE/compose-$COMPOSE_VERSION
	if [[ ! -x $out/docker-compose ]]; then
		command -v go >/dev/null || die "no docker compose plugin and no go to build one"
		say "building docker compose $COMPOSE_VERSION from the github.com/docker/compose/v2 Go module"
		local dir
		# The module's go.mod has exclude directives, so `go install m@v`
		# refuses it; build it as the main module from its source instead.
		# Its own module and build caches under $CACHE: `clean` makes the
		# next build as cold as on a fresh machine.
		export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gocache
		dir=$(cd /tmp && GOFLAGS='-mod=mod -modcacherw' go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" |
			sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		[[ -d $dir ]] || die "go mod download github.com/docker/compose/v2@$COMPOSE_VERSION gave no directory"
		rm -rf "$out.src"
		mkdir -p "$out"
		cp -r "$dir" "$out.src"
		chmod -R u+w "$out.src"
		(cd "$out.src" && CGO_ENABLED=0 GOFLAGS='-mod=mod -modcacherw' go build -trimpath \
			-ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
			-o "$out/docker-compose" ./cmd)
		rm -rf "$out.src"
		unset GOMODCACHE GOCACHE
	fi
	mkdir -p /usr/local/lib/docker/cli-plugins
	install -m 0755 "$out/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose
	echo /usr/local/lib/docker/cli-plugins/docker-compose >"$CACHE/installed-plugin"
	docker compose version >/dev/null 2>&1 || die "docker compose does not run after installing $out/docker-compose"
	say "$(docker compose version)"
}

engine() {
	timed "engine" start_engine
	timed "compose plugin" install_compose
}

# The compose plugin's build (minutes when cold, all CPU) overlaps the
# image builds and it/ (much of them downloads and waiting) when `compose`
# and `all` start it in the background; compose_plugin_ready waits for it.
compose_bg_pid=
compose_bg_start=
start_compose_plugin() {
	if docker compose version >/dev/null 2>&1 || [[ -x $CACHE/compose-$COMPOSE_VERSION/docker-compose ]]; then
		return 0
	fi
	mkdir -p "$CACHE"
	say "building the compose plugin in the background (log: $CACHE/compose-build.log)"
	compose_bg_start=$(now)
	# Its own session, so a failing run can stop the whole build.
	setsid "$here/docker-ci.sh" compose-plugin </dev/null >"$CACHE/compose-build.log" 2>&1 &
	compose_bg_pid=$!
}

compose_plugin_ready() {
	if [[ -n $compose_bg_pid ]]; then
		local rc=0 t
		t=$(now)
		wait "$compose_bg_pid" || rc=$?
		compose_bg_pid=
		say "waited $(since "$t")s for the compose plugin, built in the background in $(since "$compose_bg_start")s"
		if ((rc != 0)); then
			tail -n 30 "$CACHE/compose-build.log" >&2
			die "building the compose plugin failed (log: $CACHE/compose-build.log)"
		fi
	fi
	install_compose
}

# ---------------------------------------------------------------- images

IMG_DEBIAN=pullsched-ci/debian:$DEBIAN_SUITE
IMG_KAFKA=pullsched-ci/kafka:$KAFKA_VERSION
IMG_PULLSCHED=pullsched-ci/pullsched:latest
go_version=$(go env GOVERSION 2>/dev/null || true)
IMG_GO=pullsched-ci/golang:${go_version#go}

# label IMAGE: the image's pullsched-ci.inputs label, empty if none.
label() { docker image inspect --format '{{ index .Config.Labels "pullsched-ci.inputs" }}' "$1" 2>/dev/null || true; }
image_id() { docker image inspect --format '{{.Id}}' "$1"; }
hash() { sha256sum | cut -c1-16; }

debian_mirror() {
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		echo "$DEBIAN_MIRROR"
		return
	fi
	local m
	m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n 1 || true)
	if [[ -z $m ]]; then
		m=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\(http[^[:space:]]*\).*/\2/p' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n 1 || true)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

build_debian() {
	local mirror inputs
	mirror=$(debian_mirror)
	# The host's own CAs (an egress proxy's, say) go into the image too, so
	# the Go module proxy and Maven Central answer inside as they do outside.
	local cas=()
	if [[ -d $EXTRA_CA_DIR ]]; then
		mapfile -t cas < <(find "$EXTRA_CA_DIR" -maxdepth 1 -type f -name '*.crt' | sort)
	fi
	inputs=$( (printf 'debian v1 %s %s minbase ca-certificates\n' "$DEBIAN_SUITE" "$mirror"
		((${#cas[@]} == 0)) || cat "${cas[@]}") | hash)
	if [[ $(label "$IMG_DEBIAN") == "$inputs" ]]; then
		say "$IMG_DEBIAN is up to date"
		return 0
	fi
	command -v debootstrap >/dev/null || apt_install debootstrap
	local root=$CACHE/rootfs-$DEBIAN_SUITE
	rm -rf "$root"
	mkdir -p "$CACHE"
	say "debootstrap $DEBIAN_SUITE from $mirror (log: $CACHE/debootstrap.log)"
	if ! debootstrap --variant=minbase --include=ca-certificates --components=main \
		"$DEBIAN_SUITE" "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1; then
		tail -n 30 "$CACHE/debootstrap.log" >&2
		die "debootstrap failed"
	fi
	if ((${#cas[@]} > 0)); then
		say "adding the host's CAs to the image: ${cas[*]}"
		cp "${cas[@]}" "$root/usr/local/share/ca-certificates/"
		chroot "$root" update-ca-certificates >/dev/null
	fi
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
	tar --numeric-owner -C "$root" -c . | docker import \
		--change "LABEL pullsched-ci.inputs=$inputs" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' - "$IMG_DEBIAN" >/dev/null
	rm -rf "$root"
	say "imported $IMG_DEBIAN"
}

build_golang() {
	[[ -n $go_version ]] || die "go is not installed"
	local inputs
	inputs=$( (echo "$go_version"; image_id "$IMG_DEBIAN"; cat scripts/docker/golang/Dockerfile) | hash)
	if [[ $(label "$IMG_GO") == "$inputs" ]]; then
		say "$IMG_GO is up to date"
		return 0
	fi
	local mod=golang.org/toolchain@v0.0.1-$go_version.linux-amd64 dir
	dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -f $dir/bin/go ]] || die "go mod download $mod gave no toolchain"
	# The module cache keeps no execute bits; the go command sets them when
	# it switches toolchains, and so does this copy.
	local ctx=$CACHE/golang-context
	rm -rf "$ctx"
	cp -r "$dir" "$ctx"
	chmod -R u+w "$ctx"
	chmod a+x "$ctx"/bin/* "$ctx"/pkg/tool/*/*
	docker_build --network host -q -f scripts/docker/golang/Dockerfile \
		--build-arg BASE_IMAGE="$IMG_DEBIAN" --label "pullsched-ci.inputs=$inputs" \
		-t "$IMG_GO" "$ctx" >/dev/null
	rm -rf "$ctx"
	say "built $IMG_GO"
}

build_kafka() {
	scripts/kafka.sh fetch
	local libs=${KAFKA_DIR:-$repo/.kafka}/libs-$KAFKA_VERSION
	[[ -f $libs/.complete ]] || die "no jars in $libs after scripts/kafka.sh fetch"
	local inputs
	inputs=$( (echo "$KAFKA_VERSION"; image_id "$IMG_DEBIAN"; ls "$libs";
		find scripts/docker/kafka -type f | sort | xargs cat) | hash)
	if [[ $(label "$IMG_KAFKA") == "$inputs" ]]; then
		say "$IMG_KAFKA is up to date"
		return 0
	fi
	local ctx=$CACHE/kafka-context
	rm -rf "$ctx"
	mkdir -p "$ctx"
	cp -r scripts/docker/kafka/. "$ctx/"
	mkdir -p "$ctx/libs"
	cp "$libs"/*.jar "$ctx/libs/"
	docker_build --network host -q --build-arg BASE_IMAGE="$IMG_DEBIAN" \
		--build-arg KAFKA_VERSION="$KAFKA_VERSION" --label "pullsched-ci.inputs=$inputs" \
		-t "$IMG_KAFKA" "$ctx" >/dev/null
	rm -rf "$ctx"
	say "built $IMG_KAFKA"
}

build_pullsched() {
	# Always built: BuildKit's layer and Go build caches make an unchanged
	# tree a matter of seconds.
	if ! docker_build --network host --build-arg GO_IMAGE="$IMG_GO" -t "$IMG_PULLSCHED" . >"$CACHE/pullsched-build.log" 2>&1; then
		tail -n 40 "$CACHE/pullsched-build.log" >&2
		die "docker build of $IMG_PULLSCHED failed (log: $CACHE/pullsched-build.log)"
	fi
	say "built $IMG_PULLSCHED"
}

# check_image: what the Dockerfile promises, seen on the built image.
check_image() {
	local user hc entry
	user=$(docker image inspect --format '{{.Config.User}}' "$IMG_PULLSCHED")
	hc=$(docker image inspect --format '{{json .Config.Healthcheck.Test}}' "$IMG_PULLSCHED")
	entry=$(docker image inspect --format '{{json .Config.Entrypoint}}' "$IMG_PULLSCHED")
	say "$IMG_PULLSCHED: user $user, entrypoint $entry, health check $hc"
	[[ $user == 65532:65532 ]] || die "$IMG_PULLSCHED runs as '$user', want 65532:65532"
	[[ $hc == '["CMD","/usr/local/bin/pullsched","health"]' ]] || die "$IMG_PULLSCHED health check is $hc"
	# The image holds nothing but the binary, so running it at all proves it
	# static; `health` against a dev instance in the same image proves the
	# health check works.
	local name=pullsched-ci-imagecheck port broker_port
	read -r port broker_port < <(free_ports 2)
	docker rm -f "$name" >/dev/null 2>&1 || true
	docker run -d --name "$name" --network host "$IMG_PULLSCHED" \
		dev --listen "127.0.0.1:$port" --broker-port "$broker_port" >/dev/null
	local ok= i
	for i in $(seq 120); do
		if docker exec "$name" /usr/local/bin/pullsched health --listen "127.0.0.1:$port" >/dev/null 2>&1; then
			ok=1
			break
		fi
		[[ $(docker inspect --format '{{.State.Running}}' "$name") == true ]] || break
		sleep 0.5
	done
	if [[ -z $ok ]]; then
		docker logs --tail 30 "$name" >&2 || true
		docker rm -f "$name" >/dev/null
		die "pullsched health inside $IMG_PULLSCHED did not pass (within 60s, or its dev instance on 127.0.0.1:$port exited)"
	fi
	docker exec "$name" /usr/local/bin/pullsched health --listen "127.0.0.1:$port" >&2
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/run/linpack-1" -d '{"n": 50}' || true)
	docker rm -f "$name" >/dev/null
	[[ $code == 200 ]] || die "dev instance in $IMG_PULLSCHED answered POST /run/linpack-1 with $code"
	say "$IMG_PULLSCHED: pullsched health passes inside the container; dev answers 200"
}

# free_ports N: N distinct TCP ports free on 127.0.0.1 a moment ago, on one line.
free_ports() {
	python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

images() {
	timed "engine" start_engine
	timed "image $IMG_DEBIAN" build_debian
	timed "image $IMG_GO" build_golang
	timed "image $IMG_KAFKA" build_kafka
	timed "image $IMG_PULLSCHED" build_pullsched
	timed "check $IMG_PULLSCHED" check_image
}

image_sizes() {
	say "image sizes:"
	docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^pullsched-ci/' | sort |
		awk '{ printf "  %-36s %s\n", $1, $2 }' >&2
}

# ---------------------------------------------------------------- it

run_it() {
	mkdir -p "$CACHE"
	local log=$CACHE/it.log
	local rc=0
	env -u PULLSCHED_IT_BROKERS -u PULLSCHED_IT_NO_DOCKER PULLSCHED_IT_KAFKA_IMAGE="$IMG_KAFKA" \
		go test -count=1 -v ./it/... 2>&1 | tee "$log" || rc=$?
	((rc == 0)) || die "go test ./it/... failed (exit $rc; log: $log)"
	grep -q '^it: broker kind testcontainers' "$log" ||
		die "./it/... did not run on a testcontainers broker (see 'it: broker kind' in $log)"
	say "./it/... passed on a broker started by testcontainers from $IMG_KAFKA"
}

# ---------------------------------------------------------------- compose

compose_project=pullsched-ci
dc() { docker compose -p "$compose_project" -f docker-compose.yml -f docker-compose.ci.yml "$@"; }

compose_down() {
	if [[ -n ${PULLSCHED_CI_KEEP:-} ]]; then
		say "PULLSCHED_CI_KEEP is set: leaving $compose_project up (docker compose -p $compose_project ... down -v)"
		return 0
	fi
	dc down -v --remove-orphans >/dev/null 2>&1 || dc down -v --remove-orphans
}

compose_failed() {
	say "---- docker compose ps -a ----"
	dc ps -a >&2 || true
	say "---- last log lines ----"
	dc logs --no-color --tail 25 >&2 || true
}

# post N: N requests through the controller; prints "<code> <cold> <worker>" each.
post() {
	local n=$1 i
	for ((i = 0; i < n; i++)); do
		curl -s -o /dev/null -D - -m 30 -X POST "http://127.0.0.1:25020/run/linpack-1" -d '{"n": 100}' |
			tr -d '\r' | awk '
				NR == 1 { code = $2 }
				tolower($1) == "x-cold-start:" { cold = $2 }
				tolower($1) == "x-worker:" { worker = $2 }
				END { printf "%s %s %s\n", code != "" ? code : "000", cold != "" ? cold : "-", worker != "" ? worker : "-" }'
	done
}

# ports_free: every loopback port docker-compose.ci.yml listens on is free,
# else the error names who holds it (on the host network a taken port would
# make a service answer for another program).
ports_free() {
	local port taken=()
	for port in $(grep -E '^\s*(PULLSCHED_LISTEN|KAFKA_LISTENERS):' docker-compose.ci.yml |
		grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2 | sort -un); do
		if timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' port "$port" 2>/dev/null; then
			taken+=("$port")
		fi
	done
	if ((${#taken[@]} > 0)); then
		say "ports of docker-compose.ci.yml already taken on 127.0.0.1: ${taken[*]}"
		ss -ltnp 2>/dev/null | grep -E ":($(
			IFS='|'
			echo "${taken[*]}"
		))\b" >&2 || true
		die "free them (or stop what holds them) and run again"
	fi
}

run_compose() {
	export PULLSCHED_IMAGE=$IMG_PULLSCHED KAFKA_IMAGE=$IMG_KAFKA
	export PULLSCHED_ADMIN_TOKEN=${PULLSCHED_ADMIN_TOKEN:-ci-$$}
	dc down -v --remove-orphans >/dev/null 2>&1 || true
	ports_free
	compose_up=1
	local t
	t=$(now)
	dc up -d --wait --wait-timeout 300 --no-build --pull never
	say "compose up --wait: $(since "$t")s"
	dc ps --format '  {{.Service}}: {{.Status}}' >&2

	# A topics service that exited 0, every other service healthy.
	local svc state
	for svc in $(dc config --services); do
		state=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.ExitCode}}' "$(dc ps -a -q "$svc")")
		case $svc in
		topics) [[ $state == "exited  0" ]] || die "topics: $state, want exited with 0" ;;
		*) [[ $state == "running healthy 0" ]] || die "$svc: $state, want running and healthy" ;;
		esac
	done
	say "every service healthy, topics exited 0"

	# `pullsched health` run by hand inside containers, as the health check does.
	for svc in controller scheduler-1 invoker-1 workersim-1; do
		docker exec "$(dc ps -q "$svc")" /usr/local/bin/pullsched health >&2 ||
			die "pullsched health inside $svc failed"
	done
	say "pullsched health passes run by hand inside controller, scheduler-1, invoker-1 and workersim-1"

	# Requests through the controller: the first 200, a second one warm.
	local first second
	first=$(post 1)
	second=$(post 1)
	say "first call: $first; second call: $second (code, X-Cold-Start, X-Worker)"
	[[ $first == 200\ * ]] || die "first call answered $first"
	[[ $second == "200 0 "* ]] || die "second call answered $second, want 200 and warm (X-Cold-Start 0)"

	# Kill the worker that served them; the others keep answering.
	local victim=${second##* }
	local vsvc
	case $victim in
	worker-[0-9]) vsvc=workersim-${victim#worker-} ;;
	*) vsvc=workersim-1 ;;
	esac
	# A container killed by hand stays down whatever its restart policy.
	say "killing $vsvc (it served $victim)"
	dc kill "$vsvc" >/dev/null
	# Calls already bound for the dead worker may fail until its bridge
	# reports the failures and the schedulers stop picking it: wait (at
	# most 60s) for the first answer from another worker, and say how many
	# failed before it.
	local line t0=$SECONDS failed=()
	while :; do
		line=$(post 1)
		if [[ $line == 200\ * && ${line##* } != "$victim" ]]; then
			break
		fi
		failed+=("${line// /,}")
		((SECONDS - t0 < 60)) || die "no call answered by another worker within 60s of the kill: ${failed[*]}"
		sleep 0.2
	done
	say "after the kill: ${#failed[@]} call(s) failed before another worker answered (within $((SECONDS - t0))s): ${failed[*]:-none}"
	local ok=0 bad=0 workers=()
	while read -r line; do
		if [[ $line == 200\ * ]]; then
			ok=$((ok + 1))
			workers+=("${line##* }")
		else
			bad=$((bad + 1))
		fi
	done < <(post 20)
	say "after the kill: $ok of 20 calls answered 200 by: $(printf '%s\n' "${workers[@]}" | sort | uniq -c | tr '\n' ' ')"
	((ok == 20)) || die "$bad of 20 calls failed after $vsvc was killed"
	if printf '%s\n' "${workers[@]}" | grep -qx "$victim"; then
		die "$victim answered after its container was killed"
	fi
	compose_up=
	compose_down
	say "compose: down -v"
}

# ---------------------------------------------------------------- main

# On any exit: a compose run that did not finish shows its state and is
# taken down; an engine that `all` started is stopped.
compose_up=
stop_engine_at_exit=
at_exit() {
	local rc=$?
	if [[ -n $compose_up ]]; then
		compose_failed
		compose_down
	fi
	if [[ -n $compose_bg_pid ]] && kill -0 "$compose_bg_pid" 2>/dev/null; then
		say "stopping the compose plugin's build (pid $compose_bg_pid)"
		kill -TERM -- "-$compose_bg_pid" 2>/dev/null || true
	fi
	if [[ -n $stop_engine_at_exit ]]; then
		stop_engine
	fi
	return $rc
}
trap at_exit EXIT

print_summary() {
	say "---- summary ----"
	local l
	for l in "${summary[@]}"; do
		say "  $l"
	done
	say "  $(printf '%-34s %8ss' total "$(since "$script_start")")"
	image_sizes
}

case ${1:-} in
engine) engine ;;
images)
	images
	print_summary
	;;
it)
	images
	timed "it/ on testcontainers" run_it
	print_summary
	;;
compose)
	start_compose_plugin
	images
	timed "compose plugin (wait)" compose_plugin_ready
	timed "compose" run_compose
	print_summary
	;;
all)
	# An engine this run starts is stopped when it ends, passed or failed.
	if ! our_dockerd >/dev/null && ! engine_answers; then
		stop_engine_at_exit=1
	fi
	start_compose_plugin
	images
	timed "it/ on testcontainers" run_it
	timed "compose plugin (wait)" compose_plugin_ready
	timed "compose" run_compose
	print_summary
	;;
compose-plugin) install_compose ;;
engine-stop) stop_engine ;;
clean)
	# The images live in the engine: start ours (and stop it after) to
	# delete them.
	if ! engine_answers && command -v dockerd >/dev/null; then
		start_engine
	fi
	if engine_answers; then
		docker image ls --format '{{.Repository}}:{{.Tag}}' | grep '^pullsched-ci/' | xargs -r docker image rm -f >/dev/null || true
		docker builder prune -af >/dev/null 2>&1 || true
		if our_dockerd >/dev/null; then
			# Everything in the engine this script starts is its own.
			docker system prune -af --volumes >/dev/null 2>&1 || true
		fi
		say "removed the pullsched-ci images and the build cache"
	fi
	stop_engine
	if [[ -f $CACHE/installed-plugin ]]; then
		rm -f "$(<"$CACHE/installed-plugin")"
		say "removed the compose plugin it installed"
	fi
	rm -rf "$CACHE"
	say "removed $CACHE"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
