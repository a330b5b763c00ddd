#!/usr/bin/env bash
# Real PostgreSQL and Apache Kafka on loopback for the test suite (`make test`, `.ci/run`).
#
#   bash deploy/servers.sh up|down|status
#   bash deploy/servers.sh kafka-stop|kafka-start|pg-stop|pg-start   # fault injection, data kept
#
# `up` is idempotent: it starts only what is not running, makes sure the databases and topics
# exist, and writes var/servers.env (shell-sourceable KEY=value lines) for the tests:
#   TEST_POSTGRES_URL, TEST_POSTGRES_ADMIN_URL, KAFKA_BOOTSTRAP_SERVERS, FANGPIN_SERVERS_SCRIPT
#   (and, when this script runs both servers, their FANGPIN_*_PORT values)
# If TEST_POSTGRES_URL and/or KAFKA_BOOTSTRAP_SERVERS are already set, that server is taken as
# given and not started here. All state lives under var/servers/ (gitignored).
#
# Environment: FANGPIN_PG_PORT (55432), FANGPIN_KAFKA_PORT (19092),
#   FANGPIN_KAFKA_CONTROLLER_PORT (Kafka port + 1), FANGPIN_PYTHON (a Python with aiokafka;
#   defaults to .venv/bin/python, then python3).
set -euo pipefail

# Everything below uses paths relative to the repository root, wherever we are called from.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

STATE=$ROOT/var/servers
ENV_FILE=$ROOT/var/servers.env
SCRIPT_REL=deploy/servers.sh

PG_PORT=${FANGPIN_PG_PORT:-55432}
PG_DATABASES=(intake screening casework fangpin_test)

KAFKA_PORT=${FANGPIN_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${FANGPIN_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
KAFKA_LIB=$STATE/kafka-lib
KAFKA_DIR=$STATE/kafka
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_CONF=$KAFKA_DIR/server.properties
KAFKA_LOG=$KAFKA_DIR/kafka.log
KAFKA_PIDFILE=$KAFKA_DIR/kafka.pid
KAFKA_READY_TIMEOUT=90
KAFKA_STOP_TIMEOUT=30
KAFKA_LOG4J="-Dlog4j.configuration=file:$ROOT/deploy/kafka/log4j.properties"

T0=$(date +%s%N)

elapsed() {
    local ms=$((($(date +%s%N) - T0) / 1000000))
    printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

say() { printf '[servers %6ss] %s\n' "$(elapsed)" "$*"; }

die() {
    printf 'servers.sh: error: %s\n' "$*" >&2
    exit 1
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True while $1 is a live process; a zombie counts as gone, because in a container whose
# PID 1 does not reap, a stopped broker would otherwise look alive forever.
pid_alive() {
    local pid=$1 st
    [ -r "/proc/$pid/stat" ] || return 1
    st=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && [ "$st" != X ]
}

# Only one invocation at a time touches the servers (two `make test` in parallel, or a test
# calling kafka-start while `up` still runs). The lock fd is closed for every server we start
# (9>&-), or the long-lived server would hold the lock forever.
take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    if command -v flock >/dev/null; then
        flock -w 600 9 || die "another servers.sh has held $STATE/.lock for 10 minutes"
    fi
}

# ---------------------------------------------------------------------------- PostgreSQL

PG_BIN=
PG_ROOT=
PG_DATA=
PG_SOCK=
PG_LOG=

# Newest installed server version, so a machine with several majors picks one deterministically.
find_pg_bin() {
    local d
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

ensure_pg_bin() {
    if PG_BIN=$(find_pg_bin); then return 0; fi
    # A fresh CI machine of this kind may lack the server; Debian's package is the supported one.
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and we are not root: apt-get install postgresql"
    say "postgres: binaries missing, installing the Debian package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq 9>&- >/dev/null || die "apt-get update failed"
    apt-get install -y -qq postgresql 9>&- >/dev/null || die "apt-get install postgresql failed"
    PG_BIN=$(find_pg_bin) || die "apt-get installed postgresql but no initdb/pg_ctl under /usr/lib/postgresql"
    say "postgres: installed $PG_BIN"
}

# pg_ctl and the server refuse to run as root, so as root they run as the `postgres` OS user
# (created by the Debian package). From `/` because runuser keeps the working directory and
# postgres may not be allowed into ours.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Where the cluster lives. Normally var/servers/pg, so that `rm -rf var/servers` resets
# everything. As root the cluster belongs to `postgres`, which must be able to traverse every
# parent directory of the repository; a checkout under a private home (mode 700) does not allow
# that, and a deep checkout can make the socket path longer than the 107 bytes a Unix socket
# address may hold. In either case the cluster goes to /tmp/fangpin-pg-<uid>-<hash of the
# repo path> instead: stable per checkout, so later calls find it again.
pick_pg_root() {
    local candidate=$STATE/pg
    mkdir -p "$STATE"
    chmod 755 "$ROOT/var" "$STATE"
    local ok=1
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "OS user 'postgres' missing (the postgresql package creates it)"
        runuser -u postgres -- test -x "$STATE" 2>/dev/null || ok=0
    fi
    if [ ${#candidate} -gt 80 ]; then ok=0; fi
    if [ "$ok" = 1 ]; then
        PG_ROOT=$candidate
    else
        PG_ROOT=/tmp/fangpin-pg-$(id -u)-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
    fi
    PG_DATA=$PG_ROOT/data
    PG_SOCK=$PG_ROOT/sock
    PG_LOG=$PG_ROOT/postgres.log
}

pg_running() {
    [ -f "$PG_DATA/PG_VERSION" ] || return 1
    [ -n "$PG_BIN" ] || PG_BIN=$(find_pg_bin) || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# The /tmp fallback cluster outlives `rm -rf var/servers`; the marker file inside var/servers
# tells whether it belongs to the current state, so that reset is honoured there too.
pg_discard_stale_fallback() {
    if [ "$PG_ROOT" != "$STATE/pg" ] && [ ! -e "$STATE/pg.fallback" ] && [ -e "$PG_ROOT" ]; then
        say "postgres: discarding stale cluster in $PG_ROOT"
        if pg_running; then as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 9>&- || true; fi
        rm -rf "$PG_ROOT"
    fi
}

pg_init() {
    [ -f "$PG_DATA/PG_VERSION" ] && return 0
    say "postgres: initdb ($PG_BIN)"
    rm -rf "$PG_ROOT"
    mkdir -p "$PG_ROOT" "$PG_SOCK"
    if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$PG_ROOT"; fi
    chmod 700 "$PG_ROOT"
    # trust auth: a throwaway cluster reachable only on loopback and our own socket dir.
    # --no-sync: the data is disposable, and fsyncing a fresh cluster costs seconds.
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$PG_ROOT/initdb.log" 2>&1; then
        tail -n 30 "$PG_ROOT/initdb.log" >&2
        die "initdb failed"
    fi
    # Runtime settings live in fangpin.conf, rewritten at every start so that a changed
    # FANGPIN_PG_PORT takes effect without a new cluster.
    printf "\ninclude_if_exists = 'fangpin.conf'\n" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
    if [ "$PG_ROOT" != "$STATE/pg" ]; then echo "$PG_ROOT" >"$STATE/pg.fallback"; fi
}

pg_write_conf() {
    local sock=${PG_SOCK//\'/\'\'}
    # Durability is traded for speed (fsync/synchronous_commit/full_page_writes off): a crash
    # of this throwaway cluster only loses test data. 200 connections because every xdist
    # worker and every service process under test keeps its own pool.
    as_pg tee "$PG_DATA/fangpin.conf" >/dev/null <<EOF
# Written by deploy/servers.sh at every start; edits here are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

pg_start() {
    pg_discard_stale_fallback
    if pg_running; then
        say "postgres: already running on 127.0.0.1:$PG_PORT"
        return 0
    fi
    if port_open "$PG_PORT"; then
        die "port $PG_PORT is taken by a process that is not our cluster (set FANGPIN_PG_PORT)"
    fi
    pg_init
    pg_write_conf
    say "postgres: starting on 127.0.0.1:$PG_PORT"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null 9>&-; then
        tail -n 30 "$PG_LOG" >&2 || true
        die "PostgreSQL did not start (log: $PG_LOG)"
    fi
    say "postgres: ready"
}

pg_stop() {
    if ! pg_running; then
        say "postgres: not running"
        return 0
    fi
    say "postgres: stopping"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 9>&-; then
        # Fast shutdown waits for nothing but checkpointing; if even that hangs, do not leave
        # a server behind.
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 9>&- ||
            die "PostgreSQL did not stop (data: $PG_DATA)"
    fi
    say "postgres: stopped"
}

pg_ensure_databases() {
    local list
    list=$(printf ",'%s'" "${PG_DATABASES[@]}")
    list=${list#,}
    # One round trip: \gexec runs a CREATE DATABASE for each missing name (CREATE DATABASE
    # cannot run inside a DO block). Over TCP so this also works as a non-postgres OS user.
    PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 >/dev/null <<EOF
SELECT format('CREATE DATABASE %I OWNER postgres', d)
FROM unnest(ARRAY[$list]) AS d
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d)
\gexec
EOF
    say "postgres: databases ${PG_DATABASES[*]} present"
}

# ---------------------------------------------------------------------------------- Kafka

PYTHON=

# aiokafka is already a project dependency, so the readiness check and the topic creation
# use it instead of fetching Kafka's CLI tools (TopicCommand lives in kafka-tools, which the
# kafka_2.13 artifact does not pull in, and every JVM start costs a second or two).
pick_python() {
    local c
    for c in "${FANGPIN_PYTHON:-}" "$ROOT/.venv/bin/python" python3; do
        [ -n "$c" ] || continue
        command -v "$c" >/dev/null 2>&1 || continue
        if "$c" -c 'import aiokafka' 2>/dev/null; then
            PYTHON=$c
            return 0
        fi
    done
    die "no Python with aiokafka found: run 'make' to create .venv, or set FANGPIN_PYTHON"
}

# Subcommands: ready <bootstrap> <timeout s> <broker pid or 0>
#              topics <bootstrap> <timeout s> <broker pid or 0> <topics.txt>
# `ready` succeeds once a metadata request lists a broker. `topics` additionally creates the
# missing topics and waits until every partition has a leader, so a producer in the first
# test does not race leader election (also after kafka-start), and warms up the group
# coordinators.
read -r -d '' KAFKA_ADMIN_PY <<'PY' || true
import asyncio
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

TOPIC_ALREADY_EXISTS = 36


def broker_alive(pid: int) -> bool:
    if not pid:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def read_topics(path: str) -> dict[str, int]:
    wanted = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, partitions = line.split()
                wanted[name] = int(partitions)
    return wanted


async def connect(bootstrap: str, deadline: float, pid: int) -> AIOKafkaAdminClient:
    last: object = "no attempt"
    while True:
        if not broker_alive(pid):
            sys.exit(f"broker process {pid} exited")
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="fangpin-servers", request_timeout_ms=5000
        )
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            if cluster.get("brokers"):
                return admin
            last = "metadata lists no broker yet"
        except Exception as exc:
            last = repr(exc)
        await admin.close()
        if time.monotonic() > deadline:
            sys.exit(f"no metadata from {bootstrap}: {last}")
        await asyncio.sleep(0.3)


async def ensure_topics(admin: AIOKafkaAdminClient, wanted: dict[str, int], deadline: float) -> None:
    existing = set(await admin.list_topics())
    missing = [NewTopic(n, p, 1) for n, p in wanted.items() if n not in existing]
    if missing:
        response = await admin.create_topics(missing, timeout_ms=30000)
        for name, code, *rest in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                sys.exit(f"creating topic {name} failed: error {code} {rest}")
        print("created " + " ".join(t.name for t in missing))
    while True:
        problems = []
        for topic in await admin.describe_topics(list(wanted)):
            name, parts = topic["topic"], topic["partitions"]
            if topic["error_code"]:
                problems.append(f"{name}: error {topic['error_code']}")
            elif len(parts) < wanted[name]:
                problems.append(f"{name}: {len(parts)} partitions, want {wanted[name]}")
            elif any(p["error_code"] or p["leader"] < 0 for p in parts):
                problems.append(f"{name}: partitions without leader")
        if not problems:
            return
        if time.monotonic() > deadline:
            sys.exit("topics not ready: " + "; ".join(problems))
        await asyncio.sleep(0.3)


def java_string_hash(s: str) -> int:
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


async def warm_group_coordinators(admin: AIOKafkaAdminClient, deadline: float) -> None:
    # __consumer_offsets is created on the first FindCoordinator request; done here, the first
    # test's consumer group joins at once instead of retrying GroupCoordinatorNotAvailable.
    # One group id per offsets partition (Kafka maps abs(groupId.hashCode()) % partitions),
    # so every partition's coordinator is known to be loaded, also after kafka-start.
    async def lookup(group: str) -> None:
        while True:
            try:
                await admin.find_coordinator(group)
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    sys.exit(f"group coordinator for {group} not available: {exc!r}")
                await asyncio.sleep(0.2)

    await lookup("fangpin-warmup")
    while True:
        meta = await admin.describe_topics(["__consumer_offsets"])
        count = len(meta[0]["partitions"]) if meta and not meta[0]["error_code"] else 0
        if count:
            break
        if time.monotonic() > deadline:
            sys.exit("__consumer_offsets has no partitions")
        await asyncio.sleep(0.2)
    groups: dict[int, str] = {}
    k = 0
    while len(groups) < count:
        name = f"fangpin-warmup-{k}"
        h = java_string_hash(name)
        groups.setdefault(0 if h == -(1 << 31) else abs(h) % count, name)
        k += 1
    for group in groups.values():
        await lookup(group)


async def main() -> None:
    command, bootstrap, timeout, pid = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    deadline = time.monotonic() + timeout
    admin = await connect(bootstrap, deadline, pid)
    try:
        if command == "topics":
            await ensure_topics(admin, read_topics(sys.argv[5]), deadline)
            await warm_group_coordinators(admin, deadline)
    finally:
        await admin.close()


asyncio.run(main())
PY

kafka_admin() { "$PYTHON" -c "$KAFKA_ADMIN_PY" "$@" 9>&-; }

# Maven resolves the broker and its runtime jars once into var/servers/kafka-lib. The fetch
# goes to a temporary directory and is renamed only when complete, and the pom's checksum is
# recorded, so an interrupted fetch or an edited pom causes a fresh one.
kafka_fetch() {
    local sum
    sum=$(sha256sum deploy/kafka/pom.xml | cut -d' ' -f1)
    if [ -f "$KAFKA_LIB/.pom-sha256" ] && [ "$(cat "$KAFKA_LIB/.pom-sha256")" = "$sum" ]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka broker jars)"
    say "kafka: fetching broker jars with Maven (deploy/kafka/pom.xml)"
    rm -rf "$KAFKA_LIB.tmp"
    mkdir -p "$STATE"
    # Maven's own output goes to a log (it prints terminal escape codes even in batch mode)
    # and is shown only when the fetch fails.
    if ! mvn -B --no-transfer-progress -Dstyle.color=never -f deploy/kafka/pom.xml \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB.tmp" \
        </dev/null >"$STATE/maven.log" 2>&1 9>&-; then
        grep -E 'ERROR|BUILD' "$STATE/maven.log" | tail -n 20 >&2 || true
        die "Maven could not fetch the Kafka jars (is Maven Central reachable? log: $STATE/maven.log)"
    fi
    ls "$KAFKA_LIB.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven fetch produced no kafka_2.13 jar"
    echo "$sum" >"$KAFKA_LIB.tmp/.pom-sha256"
    rm -rf "$KAFKA_LIB"
    mv "$KAFKA_LIB.tmp" "$KAFKA_LIB"
    local jars=("$KAFKA_LIB"/*.jar)
    say "kafka: ${#jars[@]} jars in var/servers/kafka-lib"
}

# True when process $1 is a broker started with this checkout's config file.
is_our_broker() {
    pid_alive "$1" &&
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $KAFKA_CONF"
}

# The pid file alone is not trusted: after a reboot or a crash the number may belong to some
# other process, which `down` must never signal, so the command line must name our config
# file. Without a valid pid file (var/servers removed under a running broker, say) the
# process table is searched for that exact command line, so `down` still leaves no stray
# broker holding the ports.
kafka_pid() {
    local pid f
    if [ -f "$KAFKA_PIDFILE" ]; then
        pid=$(cat "$KAFKA_PIDFILE")
        if [[ $pid =~ ^[0-9]+$ ]] && is_our_broker "$pid"; then
            echo "$pid"
            return 0
        fi
    fi
    while read -r f; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        if is_our_broker "$pid"; then
            echo "$pid"
            return 0
        fi
    done < <(grep -lsF -- "$KAFKA_CONF" /proc/[0-9]*/cmdline 2>/dev/null)
    return 1
}

kafka_render_conf() {
    local esc=$KAFKA_DATA
    # Escape what sed's replacement text treats specially.
    esc=${esc//\\/\\\\}
    esc=${esc//&/\\&}
    esc=${esc//|/\\|}
    sed -e "s|@LOG_DIRS@|$esc|" -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        deploy/kafka/server.properties >"$KAFKA_CONF"
}

# Formatting writes meta.properties with a cluster id; done once per data dir so that
# kafka-stop/kafka-start (and down/up) keep topics, offsets and committed group positions.
kafka_format() {
    [ -f "$KAFKA_DATA/meta.properties" ] && return 0
    local id
    # A Kafka cluster id is 16 random bytes in unpadded URL-safe base64. One starting with
    # '-' would be parsed as an option by StorageTool, which is why Kafka never generates one.
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        [ "${id:0:1}" != - ] && break
    done
    say "kafka: formatting storage (cluster id $id)"
    mkdir -p "$KAFKA_DATA"
    if ! java -cp "$KAFKA_LIB/*" "$KAFKA_LOG4J" kafka.tools.StorageTool format -t "$id" \
        -c "$KAFKA_CONF" >"$KAFKA_DIR/format.log" 2>&1 9>&-; then
        cat "$KAFKA_DIR/format.log" >&2
        die "kafka storage format failed"
    fi
}

kafka_start() {
    local pid p
    if pid=$(kafka_pid); then
        say "kafka: already running (pid $pid) on $KAFKA_BOOTSTRAP"
        return 0
    fi
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_open "$p"; then
            die "port $p is taken by a process that is not our broker (set FANGPIN_KAFKA_PORT)"
        fi
    done
    command -v java >/dev/null || die "java not found"
    kafka_fetch
    mkdir -p "$KAFKA_DIR"
    kafka_render_conf
    kafka_format
    [ -f "$KAFKA_LOG" ] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.prev"
    rm -f "$KAFKA_PIDFILE"
    say "kafka: starting broker on $KAFKA_BOOTSTRAP (controller :$KAFKA_CONTROLLER_PORT)"
    # setsid: the broker gets its own session, so it outlives this script and is not hit by
    # signals aimed at the caller's process group (Ctrl-C in make, a CI step ending). The
    # inner shell records its own pid and then becomes java, so the pid file is exact no
    # matter whether setsid had to fork.
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell.
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-launch "$KAFKA_PIDFILE" \
        java -Xms512m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        "$KAFKA_LOG4J" -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONF" \
        </dev/null >"$KAFKA_LOG" 2>&1 9>&- &
    local launched=$SECONDS
    until [ -s "$KAFKA_PIDFILE" ]; do
        [ $((SECONDS - launched)) -lt 10 ] || die "broker launcher did not write $KAFKA_PIDFILE"
        sleep 0.05
    done
    pid=$(cat "$KAFKA_PIDFILE")
    kafka_wait_ready "$pid"
}

kafka_fail() {
    printf -- '--- last lines of %s ---\n' "$KAFKA_LOG" >&2
    tail -n 40 "$KAFKA_LOG" >&2 || true
    die "$1"
}

# Ready means the port accepts connections AND a metadata request names a broker: the socket
# opens before the broker has caught up with the metadata log, and clients would fail then.
kafka_wait_ready() {
    local pid=$1 start=$SECONDS
    until port_open "$KAFKA_PORT"; do
        pid_alive "$pid" || kafka_fail "broker exited during start-up"
        [ $((SECONDS - start)) -lt "$KAFKA_READY_TIMEOUT" ] ||
            kafka_fail "broker port $KAFKA_PORT not open after ${KAFKA_READY_TIMEOUT}s"
        sleep 0.2
    done
    say "kafka: port $KAFKA_PORT open"
    local left=$((KAFKA_READY_TIMEOUT - (SECONDS - start)))
    [ "$left" -gt 5 ] || left=5
    kafka_admin ready "$KAFKA_BOOTSTRAP" "$left" "$pid" || kafka_fail "broker not answering metadata requests"
    say "kafka: ready (pid $pid)"
}

kafka_ensure_topics() {
    local pid=${1:-0} out
    if ! out=$(kafka_admin topics "$KAFKA_BOOTSTRAP" 60 "$pid" deploy/kafka/topics.txt); then
        [ "$pid" = 0 ] && die "topic creation failed on $KAFKA_BOOTSTRAP"
        kafka_fail "topic creation failed"
    fi
    [ -z "$out" ] || say "kafka: $out"
    say "kafka: topics from deploy/kafka/topics.txt present, all partitions led"
}

kafka_stop() {
    local pid
    if ! pid=$(kafka_pid); then
        rm -f "$KAFKA_PIDFILE"
        say "kafka: not running"
        return 0
    fi
    say "kafka: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local start=$SECONDS
    while pid_alive "$pid"; do
        if [ $((SECONDS - start)) -ge "$KAFKA_STOP_TIMEOUT" ]; then
            say "kafka: no exit after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            local k=$SECONDS
            while pid_alive "$pid"; do
                [ $((SECONDS - k)) -lt 10 ] || die "kafka pid $pid survives SIGKILL"
                sleep 0.1
            done
            break
        fi
        sleep 0.1
    done
    rm -f "$KAFKA_PIDFILE"
    say "kafka: stopped"
}

# ------------------------------------------------------------------------------ commands

# URLs handed in from outside mean "use these servers". Values that came from our own
# servers.env (exported into a developer's shell, marked by FANGPIN_SERVERS_SCRIPT) do not
# count, or a second `up` after `down` would trust servers that no longer run.
GIVEN_PG=
GIVEN_KAFKA=
if [ -z "${FANGPIN_SERVERS_SCRIPT:-}" ]; then
    GIVEN_PG=${TEST_POSTGRES_URL:-}
    GIVEN_KAFKA=${KAFKA_BOOTSTRAP_SERVERS:-}
fi

# Quote a value for a POSIX shell only when it needs it, so the common lines stay plain
# KEY=value that both `. var/servers.env` and a line-by-line parser understand.
env_line() {
    local key=$1 value=$2
    if [[ $value =~ ^[A-Za-z0-9_@%+=:,./-]*$ ]]; then
        printf '%s=%s\n' "$key" "$value"
    else
        printf "%s='%s'\n" "$key" "${value//\'/\'\\\'\'}"
    fi
}

write_env() {
    local pg_url pg_admin kafka script=
    if [ -n "$GIVEN_PG" ]; then
        pg_url=$GIVEN_PG
        # Without an explicit admin URL, assume the same server and user, plain libpq scheme,
        # maintenance database `postgres`.
        if [ -n "${TEST_POSTGRES_ADMIN_URL:-}" ]; then
            pg_admin=$TEST_POSTGRES_ADMIN_URL
        else
            pg_admin=${GIVEN_PG/+asyncpg/}
            pg_admin=$(printf '%s' "$pg_admin" | sed -E 's#^([a-z]+://[^/]*)(/[^?]*)?#\1/postgres#')
        fi
    else
        pg_url=postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/fangpin_test
        pg_admin=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
    fi
    kafka=${GIVEN_KAFKA:-$KAFKA_BOOTSTRAP}
    # Fault injection only works on servers this script runs, so the tests get the script
    # path only when it manages both.
    if [ -z "$GIVEN_PG" ] && [ -z "$GIVEN_KAFKA" ]; then script=$SCRIPT_REL; fi
    {
        echo "# Written by deploy/servers.sh up; removed by down."
        env_line TEST_POSTGRES_URL "$pg_url"
        env_line TEST_POSTGRES_ADMIN_URL "$pg_admin"
        env_line KAFKA_BOOTSTRAP_SERVERS "$kafka"
        env_line FANGPIN_SERVERS_SCRIPT "$script"
        # The fault switches (pg-start, kafka-start) rewrite the servers' configuration from
        # these, so a test that sources this file restarts them on the same ports.
        if [ -n "$script" ]; then
            env_line FANGPIN_PG_PORT "$PG_PORT"
            env_line FANGPIN_KAFKA_PORT "$KAFKA_PORT"
            env_line FANGPIN_KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
        fi
    } >"$ENV_FILE.tmp"
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
    say "wrote var/servers.env"
}

cmd_up() {
    take_lock
    if [ -n "$GIVEN_PG" ]; then
        say "postgres: using the given TEST_POSTGRES_URL"
    else
        ensure_pg_bin
        pick_pg_root
        pg_start
        pg_ensure_databases
    fi
    pick_python
    if [ -n "$GIVEN_KAFKA" ]; then
        say "kafka: using the given KAFKA_BOOTSTRAP_SERVERS"
        KAFKA_BOOTSTRAP=$GIVEN_KAFKA
        kafka_admin ready "$KAFKA_BOOTSTRAP" 30 0 || die "given Kafka $KAFKA_BOOTSTRAP does not answer"
        kafka_ensure_topics 0
    else
        kafka_start
        kafka_ensure_topics "$(kafka_pid)"
    fi
    write_env
    say "up: done"
}

cmd_down() {
    take_lock
    kafka_stop
    if PG_BIN=$(find_pg_bin); then
        pick_pg_root
        pg_stop
    else
        say "postgres: not installed, nothing to stop"
    fi
    rm -f "$ENV_FILE"
    say "down: done"
}

cmd_status() {
    local rc=0 pid
    if PG_BIN=$(find_pg_bin) && pick_pg_root && pg_running; then
        echo "postgres: running on 127.0.0.1:$PG_PORT (data $PG_DATA)"
    else
        echo "postgres: stopped"
        rc=3
    fi
    if pid=$(kafka_pid); then
        echo "kafka: running pid $pid on $KAFKA_BOOTSTRAP (data $KAFKA_DATA)"
    else
        echo "kafka: stopped"
        rc=3
    fi
    return $rc
}

# Fault injection: the broker is stopped cleanly and restarted on the same data dir, so topics,
# committed offsets and unconsumed records survive.
cmd_kafka_stop() {
    take_lock
    kafka_stop
}

cmd_kafka_start() {
    take_lock
    [ -f "$KAFKA_DATA/meta.properties" ] || die "no Kafka data under var/servers/kafka: run 'up' first"
    pick_python
    kafka_start
    kafka_ensure_topics "$(kafka_pid)"
}

cmd_pg_stop() {
    take_lock
    PG_BIN=$(find_pg_bin) || die "PostgreSQL is not installed"
    pick_pg_root
    pg_stop
}

cmd_pg_start() {
    take_lock
    PG_BIN=$(find_pg_bin) || die "PostgreSQL is not installed"
    pick_pg_root
    [ -f "$PG_DATA/PG_VERSION" ] || die "no PostgreSQL cluster under $PG_ROOT: run 'up' first"
    pg_start
}

usage() {
    echo "usage: bash deploy/servers.sh up|down|status|kafka-stop|kafka-start|pg-stop|pg-start" >&2
    exit 2
}

[ $# -eq 1 ] || usage
case $1 in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
kafka-stop) cmd_kafka_stop ;;
kafka-start) cmd_kafka_start ;;
pg-stop) cmd_pg_stop ;;
pg-start) cmd_pg_start ;;
*) usage ;;
esac
