#!/usr/bin/env bash
# A real Apache Kafka broker (4.1.1, single-node KRaft, combined broker+controller) for
# the bench scripts to measure against in the same run. Meant to be sourced:
#
#   . bench/kafka.sh
#   kafka_start DIR PORT [WRAPPER...]   # e.g. kafka_start "$dir" "$port" prlimit --nofile=20000:20000
#   ... $kafka_pid is the JVM's pid ...
#   kafka_stop                          # SIGTERM, bounded wait, then kill -9
#
# One node of a multi-node cluster: set KAFKA_NODE_ID, KAFKA_CONTROLLER_PORT, KAFKA_VOTERS
# (`id@host:port,...`) and KAFKA_CLUSTER_ID (one `kafka_cluster_id` for all nodes) before
# kafka_start; without them the broker is a cluster of one. KAFKA_LISTENERS (e.g.
# `PLAINTEXT://127.0.0.1:P1,SSL://127.0.0.1:P2`, the first being PORT) replaces the one
# PLAINTEXT listener, KAFKA_EXTRA_PROPERTIES (lines) is appended to server.properties and
# KAFKA_FORMAT_ARGS (e.g. `--add-scram ...`) goes to the storage format.
#
# or run alone: `bench/kafka.sh start DIR PORT` (prints the pid and stays up) and
# `bench/kafka.sh stop DIR` (stops the JVM started in DIR). `bench/kafka.sh fetch` only
# fetches the jars. The jars (kafka_2.13 and its runtime dependencies, plus a log4j2
# binding) come from Maven Central into bench/.kafka/lib once, then are reused. Needs
# java (17+), mvn and python3. KAFKA_HEAP overrides the heap (default -Xmx1G -Xms1G, as
# Kafka's own start script).

kafka_version=4.1.1
kafka_home=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.kafka
kafka_pid=

# Fetch the jars into $kafka_home/lib unless already there.
kafka_fetch() {
  [ -f "$kafka_home/lib/.complete-$kafka_version" ] && return 0
  mkdir -p "$kafka_home"
  cat >"$kafka_home/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>moldau.bench</groupId>
  <artifactId>kafka-server-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$kafka_version</version>
    </dependency>
    <!-- as in Kafka's own distribution: slf4j 1.7 bound to log4j2 -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.24.3</version>
    </dependency>
  </dependencies>
</project>
EOF
  rm -rf "$kafka_home/lib"
  mvn -q -B -f "$kafka_home/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$kafka_home/lib" >"$kafka_home/mvn.log" 2>&1 ||
    { echo "kafka.sh: fetching jars failed:" >&2; tail -20 "$kafka_home/mvn.log" >&2; return 1; }
  touch "$kafka_home/lib/.complete-$kafka_version"
}

# kafka_start DIR PORT [WRAPPER...]: format DIR/data and start the broker on
# 127.0.0.1:PORT (its controller on another free port); WRAPPER (e.g. prlimit ...) runs
# the JVM. A DIR already formatted by an earlier kafka_start is restarted as it is (same
# config, same data). Sets kafka_pid and returns once PORT accepts connections (at most
# KAFKA_START_TIMEOUT seconds, default 60).
kafka_start() {
  local dir=$1 port=$2; shift 2
  kafka_fetch || return 1
  local cport cluster cp="$kafka_home/lib/*"
  local jvm=(java ${KAFKA_HEAP:--Xmx1G -Xms1G} -XX:+UseG1GC -XX:MaxGCPauseMillis=20
             -Djava.awt.headless=true "-Dlog4j2.configurationFile=$dir/log4j2.yaml" -cp "$cp")
  if [ ! -f "$dir/data/meta.properties" ]; then
    cport=${KAFKA_CONTROLLER_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    local node=${KAFKA_NODE_ID:-1} voters=${KAFKA_VOTERS:-1@127.0.0.1:$cport}
    mkdir -p "$dir"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=${KAFKA_LISTENERS:-PLAINTEXT://127.0.0.1:$port},CONTROLLER://127.0.0.1:$cport
advertised.listeners=${KAFKA_LISTENERS:-PLAINTEXT://127.0.0.1:$port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
${KAFKA_EXTRA_PROPERTIES:-}
EOF
    cat >"$dir/log4j2.yaml" <<EOF
Configuration:
  Appenders:
    File:
      name: file
      fileName: "$dir/kafka.log"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
EOF
    # Static voters (controller.quorum.voters): format without --standalone, which is only
    # for a dynamic quorum (controller.quorum.bootstrap.servers).
    cluster=${KAFKA_CLUSTER_ID:-$("${jvm[@]}" kafka.tools.StorageTool random-uuid 2>>"$dir/kafka.out")} || return 1
    # shellcheck disable=SC2086
    "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster" -c "$dir/server.properties" ${KAFKA_FORMAT_ARGS:-} \
      >>"$dir/kafka.out" 2>&1 || { echo "kafka.sh: format failed:" >&2; tail -5 "$dir/kafka.out" >&2; return 1; }
  fi
  "$@" "${jvm[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.out" 2>&1 &
  kafka_pid=$!
  echo "$kafka_pid" >"$dir/kafka.pid"
  local _
  for _ in $(seq $((${KAFKA_START_TIMEOUT:-60} * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$kafka_pid" 2>/dev/null || { echo "kafka.sh: broker exited:" >&2; tail -20 "$dir/kafka.out" >&2; kafka_pid=; return 1; }
    sleep 0.1
  done
  echo "kafka.sh: broker not listening on $port after ${KAFKA_START_TIMEOUT:-60} s" >&2
  kafka_stop
  return 1
}

# A new cluster id, for the nodes of one cluster (KAFKA_CLUSTER_ID).
kafka_cluster_id() {
  kafka_fetch || return 1
  java -cp "$kafka_home/lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null
}

# kafka_stop [PID]: SIGTERM, up to 60 s for a clean shutdown, then kill -9.
kafka_stop() {
  local pid=${1:-$kafka_pid} _
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || { kafka_pid=; return 0; }
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "$pid" = "$kafka_pid" ] && kafka_pid=
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    fetch) kafka_fetch ;;
    start)
      [ $# -ge 3 ] || { echo "usage: $0 start DIR PORT" >&2; exit 2; }
      kafka_start "$(realpath -m "$2")" "$3"
      echo "$kafka_pid"
      disown "$kafka_pid" ;;
    stop)
      [ $# -ge 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
      kafka_stop "$(cat "$2/kafka.pid")"
      rm -f "$2/kafka.pid" ;;
    *) echo "usage: $0 fetch | start DIR PORT | stop DIR" >&2; exit 2 ;;
  esac
fi
