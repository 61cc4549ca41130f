#!/usr/bin/env bash
# Throughput baseline: the three release binaries on a fresh database and
# vhost, `loadgen` placing orders with N clients for S seconds.
#   bench/run.sh [clients] [seconds]
# Needs the local PostgreSQL and RabbitMQ (as for the tests). Quote medians
# of several runs: the machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-64}
seconds=${2:-10}
cargo build --release --bins -q
name="bench_$(date +%s)_$$"
createdb -U postgres -h 127.0.0.1 "$name"
rabbitmqctl -q add_vhost "$name" >/dev/null
rabbitmqctl -q set_permissions -p "$name" guest '.*' '.*' '.*' >/dev/null
logs=$(mktemp -d)
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    dropdb -U postgres -h 127.0.0.1 --force "$name" || true
    rabbitmqctl -q delete_vhost "$name" >/dev/null || true
    rm -rf "$logs"
}
trap cleanup EXIT
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$name" AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$name"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
product_port=$(port) notification_port=$(port) order_port=$(port)
HTTP_ADDR=127.0.0.1:$product_port target/release/product >"$logs/product.log" 2>&1 & pids+=($!)
HTTP_ADDR=127.0.0.1:$notification_port target/release/notification >"$logs/notification.log" 2>&1 & pids+=($!)
sleep 2
HTTP_ADDR=127.0.0.1:$order_port target/release/order >"$logs/order.log" 2>&1 & pids+=($!)
for p in $product_port $notification_port $order_port; do
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$p/health" >/dev/null && break; sleep 0.1; done
done
psql -U postgres -h 127.0.0.1 -q "$name" -c "INSERT INTO products (id, name, stock) VALUES ('bench', 'Bench item', 2000000000)"
target/release/loadgen --order-url "http://127.0.0.1:$order_port" --database-url "$DATABASE_URL" \
    --clients "$clients" --seconds "$seconds"
