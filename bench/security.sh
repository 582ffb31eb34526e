#!/usr/bin/env bash
# Security benchmarks (issue 11 item 8): produce and consume throughput over PLAINTEXT,
# SSL and SASL_SSL (SCRAM-SHA-512) listeners of one release broker in the same run, with
# `moldau perf` (librdkafka) and --command-config files; then the cost of setting up a
# connection per security protocol (bench/auth_bench.rs: a librdkafka client created and
# its first Metadata answered, TLS and SASL included). Prints markdown tables.
#
#   bench/security.sh [num_records] [rounds]      (defaults 1000000, 200; needs openssl)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
rounds=${2:-200}
cargo build --release -p moldau --example auth_bench >/dev/null 2>&1
bin=target/release/moldau
bench=target/release/examples/auth_bench
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plain=$(free_port); ssl=$(free_port); sasl_ssl=$(free_port); sasl_plain=$(free_port)
dir=$(mktemp -d)

# A CA and the broker's certificate (for 127.0.0.1), PEM.
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
"$bin" server \
  --override "listeners=PLAINTEXT://127.0.0.1:$plain,SSL://127.0.0.1:$ssl,SASL_SSL://127.0.0.1:$sasl_ssl,SASL_PLAINTEXT://127.0.0.1:$sasl_plain" \
  --override "log.dirs=$dir/data" \
  --override "ssl.keystore.type=PEM" --override "ssl.keystore.location=$dir/broker.pem" \
  --override "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" \
  --override "listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas" \
  --override "listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas" \
  >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$plain") 2>/dev/null && break; sleep 0.1; done
for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
  "$bin" users scram-set --bootstrap-server "127.0.0.1:$plain" --user bench --mechanism "$mechanism" \
    --password bench-secret >/dev/null
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
echo "| listener | records | size | produce rec/s | produce MB/s | p99 ms | consume rec/s | consume MB/s |"
echo "|---|---|---|---|---|---|---|---|"
for size in 100 1024; do
  for listener in plaintext ssl sasl_ssl; do
    case $listener in plaintext) port=$plain ;; ssl) port=$ssl ;; sasl_ssl) port=$sasl_ssl ;; esac
    conf=(--bootstrap-server "127.0.0.1:$port" --command-config "$dir/$listener.properties")
    topic="bench-$listener-$size"
    "$bin" topics create "${conf[@]}" --topic "$topic" --partitions 4 >/dev/null
    p=$("$bin" perf produce "${conf[@]}" --topic "$topic" --num-records "$records" \
          --record-size "$size" --producer-props enable.idempotence=false --output json 2>/dev/null)
    c=$("$bin" perf consume "${conf[@]}" --topic "$topic" --num-records "$records" --output json 2>/dev/null)
    printf '| %s | %s | %s | %.0f | %.1f | %.1f | %.0f | %.1f |\n' "$listener" "$records" "$size" \
      "$(echo "$p" | json_field "['records_per_sec']")" "$(echo "$p" | json_field "['mb_per_sec']")" \
      "$(echo "$p" | json_field "['latency_ms']['p99']")" \
      "$(echo "$c" | json_field "['records_per_sec']")" "$(echo "$c" | json_field "['mb_per_sec']")"
  done
done
echo
ca="ssl.ca.location=$dir/ca.pem"
scram() { echo "sasl.mechanism=$1;sasl.username=bench;sasl.password=bench-secret"; }
"$bench" "$rounds" \
  "PLAINTEXT=127.0.0.1:$plain" \
  "SSL=127.0.0.1:$ssl;security.protocol=SSL;$ca" \
  "SASL_PLAINTEXT PLAIN=127.0.0.1:$sasl_plain;security.protocol=SASL_PLAINTEXT;$(scram PLAIN)" \
  "SASL_PLAINTEXT SCRAM-SHA-256=127.0.0.1:$sasl_plain;security.protocol=SASL_PLAINTEXT;$(scram SCRAM-SHA-256)" \
  "SASL_PLAINTEXT SCRAM-SHA-512=127.0.0.1:$sasl_plain;security.protocol=SASL_PLAINTEXT;$(scram SCRAM-SHA-512)" \
  "SASL_SSL SCRAM-SHA-512=127.0.0.1:$sasl_ssl;security.protocol=SASL_SSL;$ca;$(scram SCRAM-SHA-512)"
