#!/usr/bin/env bash
# Security benchmarks (issue 11 item 8), Moldau and Apache Kafka (bench/kafka.sh) in the
# same run, each with PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners (the same PEM
# key store, PLAIN and SCRAM users):
# - produce and consume throughput over PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512) with
#   `moldau perf` (librdkafka) and --command-config files. Each listener produces into its
#   own topic; every listener then consumes the topic written over PLAINTEXT, so only the
#   transport differs;
# - the cost of setting up a connection per security protocol (bench/auth_bench.rs: a
#   librdkafka client created and its first Metadata answered, TLS and SASL included).
# Prints markdown tables.
#
#   bench/security.sh [num_records] [rounds]    (defaults 1000000, 200; needs openssl, java, mvn)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
rounds=${2:-200}
cargo build --release -p moldau --example auth_bench >/dev/null 2>&1
bin=target/release/moldau
bench=target/release/examples/auth_bench
. bench/kafka.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; kafka_stop; rm -rf "$dir"; }
trap cleanup EXIT

# A CA and the brokers' certificate (for 127.0.0.1), PEM.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Bench CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=broker" -keyout "$dir/broker.key" \
  -out "$dir/broker.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/san.ext"
openssl x509 -req -in "$dir/broker.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$dir/san.ext" -out "$dir/broker.crt" 2>/dev/null
# Kafka's PEM key store: an unencrypted PKCS#8 key and the chain in one file.
openssl pkcs8 -topk8 -nocrypt -in "$dir/broker.key" -out "$dir/broker.pk8"
cat "$dir/broker.pk8" "$dir/broker.crt" >"$dir/broker.pem"

jaas='org.apache.kafka.common.security.plain.PlainLoginModule required user_bench="bench-secret";'
# Kafka wants a JAAS entry for every mechanism of every SASL listener (SCRAM's is empty).
scram_jaas='org.apache.kafka.common.security.scram.ScramLoginModule required;'
security_props="ssl.keystore.type=PEM
ssl.keystore.location=$dir/broker.pem
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
for l in sasl_ssl sasl_plaintext; do
  security_props+="
listener.name.$l.plain.sasl.jaas.config=$jaas
listener.name.$l.scram-sha-256.sasl.jaas.config=$scram_jaas
listener.name.$l.scram-sha-512.sasl.jaas.config=$scram_jaas"
done

cat >"$dir/ssl.properties" <<PROPS
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$dir/ca.pem
PROPS
cat >"$dir/sasl_ssl.properties" <<PROPS
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$dir/ca.pem
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bench" password="bench-secret";
PROPS
: >"$dir/plaintext.properties"

json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

# measure NAME: the tables for the broker listening on $plain $ssl $sasl_ssl $sasl_plain.
measure() {
  local name=$1 listener size topic p c
  conf_of() {
    local port
    case $1 in plaintext) port=$plain ;; ssl) port=$ssl ;; sasl_ssl) port=$sasl_ssl ;; esac
    echo "--bootstrap-server 127.0.0.1:$port --command-config $dir/$1.properties"
  }
  echo "| broker | listener | records | size | produce rec/s | produce MB/s | p99 ms | consume rec/s | consume MB/s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for size in 100 1024; do
    declare -A produced=()
    for listener in plaintext ssl sasl_ssl; do
      topic="bench-$listener-$size"
      # shellcheck disable=SC2046
      "$bin" topics create $(conf_of $listener) --topic "$topic" --partitions 4 >/dev/null
      # shellcheck disable=SC2046
      produced[$listener]=$("$bin" perf produce $(conf_of $listener) --topic "$topic" \
        --num-records "$records" --record-size "$size" --producer-props enable.idempotence=false \
        --output json 2>/dev/null)
    done
    for listener in plaintext ssl sasl_ssl; do
      p=${produced[$listener]}
      # shellcheck disable=SC2046
      c=$("$bin" perf consume $(conf_of $listener) --topic "bench-plaintext-$size" \
        --num-records "$records" --output json 2>/dev/null)
      printf '| %s | %s | %s | %s | %.0f | %.1f | %.1f | %.0f | %.1f |\n' "$name" "$listener" \
        "$records" "$size" \
        "$(echo "$p" | json_field "['records_per_sec']")" "$(echo "$p" | json_field "['mb_per_sec']")" \
        "$(echo "$p" | json_field "['latency_ms']['p99']")" \
        "$(echo "$c" | json_field "['records_per_sec']")" "$(echo "$c" | json_field "['mb_per_sec']")"
    done
  done
  echo
  local ca="ssl.ca.location=$dir/ca.pem"
  scram() { echo "sasl.mechanism=$1;sasl.username=bench;sasl.password=bench-secret"; }
  echo "$name:"
  "$bench" "$rounds" \
    "PLAINTEXT=127.0.0.1:$plain" \
    "SSL=127.0.0.1:$ssl;security.protocol=SSL;$ca" \
    "SASL_PLAINTEXT PLAIN=127.0.0.1:$sasl_plain;security.protocol=SASL_PLAINTEXT;$(scram PLAIN)" \
    "SASL_PLAINTEXT SCRAM-SHA-256=127.0.0.1:$sasl_plain;security.protocol=SASL_PLAINTEXT;$(scram SCRAM-SHA-256)" \
    "SASL_PLAINTEXT SCRAM-SHA-512=127.0.0.1:$sasl_plain;security.protocol=SASL_PLAINTEXT;$(scram SCRAM-SHA-512)" \
    "SASL_SSL SCRAM-SHA-512=127.0.0.1:$sasl_ssl;security.protocol=SASL_SSL;$ca;$(scram SCRAM-SHA-512)"
  echo
}

# Moldau.
plain=$(free_port); ssl=$(free_port); sasl_ssl=$(free_port); sasl_plain=$(free_port)
listeners="PLAINTEXT://127.0.0.1:$plain,SSL://127.0.0.1:$ssl,SASL_SSL://127.0.0.1:$sasl_ssl,SASL_PLAINTEXT://127.0.0.1:$sasl_plain"
overrides=(--override "listeners=$listeners" --override "log.dirs=$dir/moldau")
while IFS= read -r line; do overrides+=(--override "$line"); done <<<"$security_props"
"$bin" server "${overrides[@]}" >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$plain") 2>/dev/null && break; sleep 0.1; done
for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
  "$bin" users scram-set --bootstrap-server "127.0.0.1:$plain" --user bench --mechanism "$mechanism" \
    --password bench-secret >/dev/null
done
measure moldau
kill "$server"; wait "$server" 2>/dev/null || true; server=

# Kafka 4.1, the same listeners and users (SCRAM users from its storage format).
plain=$(free_port); ssl=$(free_port); sasl_ssl=$(free_port); sasl_plain=$(free_port)
KAFKA_LISTENERS="PLAINTEXT://127.0.0.1:$plain,SSL://127.0.0.1:$ssl,SASL_SSL://127.0.0.1:$sasl_ssl,SASL_PLAINTEXT://127.0.0.1:$sasl_plain"
KAFKA_EXTRA_PROPERTIES=$security_props
KAFKA_FORMAT_ARGS="--add-scram SCRAM-SHA-256=[name=bench,password=bench-secret] --add-scram SCRAM-SHA-512=[name=bench,password=bench-secret]"
export KAFKA_LISTENERS KAFKA_EXTRA_PROPERTIES KAFKA_FORMAT_ARGS
kafka_start "$dir/kafka" "$plain"
measure kafka
