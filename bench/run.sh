#!/usr/bin/env bash
# The benchmark in one command: builds the binaries, starts the three
# services on a fresh database and vhost, inserts the bench products, runs
# `loadgen all` (raw limits, intake closed and open loop, end to end) and
# cleans up. See bench/BENCHMARKS.md.
#
#   bench/run.sh [arguments of `loadgen all`]
#   bench/run.sh --seconds 30 --rate 3000 --orders 20000
#
# Results: bench/results/<timestamp>.json, bench/results/<timestamp>-latency.svg
# and -throughput.svg. Needs PostgreSQL and RabbitMQ (with its management
# plugin) reachable as for the tests: compose's development account on
# 127.0.0.1 by default, else BENCH_PG_URL (a maintenance database whose user
# may create databases), BENCH_AMQP_URL and BENCH_RABBITMQ_API (used with
# the AMQP URL's user). Quote medians of several runs: the machine is shared
# and noisy.
#
# BENCH_PROFILE=debug builds and runs the debug binaries (bench/smoke.sh);
# BENCH_RESULTS=<dir> writes the results there instead; BENCH_SERVICES=<dir>
# runs the service binaries of <dir> (another build, e.g. of an earlier
# commit, measured by this loadgen); BENCH_PERF=1 records where the whole
# machine spends its CPU during the run (perf, cpu-clock samples of every
# process) into <results>/<timestamp>.perf.txt. BENCH_COMMAND=intake runs
# `loadgen intake` instead of `all`; with it, BENCH_FLOOD=1 floods the order
# service's admin /ready and /metrics meanwhile (BENCH_FLOOD=public: the
# public port's, as builds before the admin listener served them;
# BENCH_FLOOD_PATHS: other paths, e.g. health; see BENCHMARKS.md, "Probe and
# scrape floods"):
#
#   BENCH_COMMAND=intake BENCH_FLOOD=1 bench/run.sh --closed --clients 64
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

profile=${BENCH_PROFILE:-release}
results=${BENCH_RESULTS:-bench/results}
case $profile in
    release) cargo build --release --bins -q ;;
    debug) cargo build --bins -q ;;
    *) die "BENCH_PROFILE must be release or debug, not '$profile'" ;;
esac
bin=target/$profile
services=${BENCH_SERVICES:-$bin}
for service in order product notification migration; do
    [ -x "$services/$service" ] || die "no $services/$service (BENCH_SERVICES)"
done

pg_url=${BENCH_PG_URL:-postgres://ecommerce:ecommerce-dev@127.0.0.1:5432/postgres}
amqp_url=${BENCH_AMQP_URL:-amqp://ecommerce:ecommerce-dev@127.0.0.1:5672}
api=${BENCH_RABBITMQ_API:-http://127.0.0.1:15672/api}
# user:password of the AMQP URL, for the management API.
account=${amqp_url#amqp://}; account=${account%%@*}
psql "$pg_url" -Atqc 'SELECT 1' >/dev/null || die "cannot log in to PostgreSQL at ${pg_url%%@*}@... (BENCH_PG_URL)"
curl -fsS -o /dev/null -u "$account" "$api/overview" \
    || die "the RabbitMQ management API is not answering at $api (BENCH_RABBITMQ_API; rabbitmq-plugins enable rabbitmq_management)"
management() { # management METHOD PATH [CURL OPTIONS...]
    local method=$1 path=$2; shift 2
    curl -fsS -o /dev/null -u "$account" -X "$method" -H 'content-type: application/json' "$@" "$api/$path"
}

name="bench_$(date +%s)_$$"
logs=$(mktemp -d)
pids=()
cleanup() {
    local status=$?
    if [ ${#pids[@]} -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" || true
    management DELETE "vhosts/$name" 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        for log in "$logs"/*.log; do
            [ -s "$log" ] || continue
            printf '\n--- last lines of %s\n' "$(basename "$log")" >&2
            tail -n 20 "$log" >&2
        done
    fi
    rm -rf "$logs"
}
trap cleanup EXIT

psql "$pg_url" -qc "CREATE DATABASE \"$name\""
management PUT "vhosts/$name"
management PUT "permissions/$name/${account%%:*}" -d '{"configure":".*","write":".*","read":".*"}'
export DATABASE_URL="${pg_url%/*}/$name" AMQP_URL="$amqp_url/$name"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_healthy() { # wait_healthy SERVICE ADMIN_PORT PORT
    # Builds from before the admin listener (BENCH_SERVICES) answer on PORT.
    for _ in $(seq 300); do
        curl -fs "http://127.0.0.1:$2/health" >/dev/null && return 0
        curl -fs "http://127.0.0.1:$3/health" >/dev/null && return 0
        sleep 0.1
    done
    die "$1 did not answer GET /health on its admin port $2 within 30 s"
}
product_port=$(port) notification_port=$(port) order_port=$(port)
# Each service's admin listener: /health, /ready, /metrics.
product_admin=$(port) notification_admin=$(port) order_admin=$(port)
# The broker's topology and the schema first, by this build's setup steps
# (an older build under BENCH_SERVICES declares the same topology itself):
# services wait for both.
"$bin/topology" >"$logs/topology.log" 2>&1 || die "topology failed (its log: $logs/topology.log)"
"$services/migration" up >"$logs/migration.log" 2>&1 || die "migration up failed (its log follows)"
HTTP_ADDR=127.0.0.1:$product_port ADMIN_ADDR=127.0.0.1:$product_admin "$services/product" >"$logs/product.log" 2>&1 & pids+=($!) product_pid=$!
wait_healthy product "$product_admin" "$product_port"
HTTP_ADDR=127.0.0.1:$notification_port ADMIN_ADDR=127.0.0.1:$notification_admin "$services/notification" >"$logs/notification.log" 2>&1 & pids+=($!) notification_pid=$!
# loadgen places thousands of orders a second from one address, 127.0.0.1
# (~2,800/s accepted, open loop at --rate 3000): far over the per-client
# limit (ORDER_RATE_LIMIT, 10/s by default), which is switched off here.
ORDER_RATE_LIMIT=off HTTP_ADDR=127.0.0.1:$order_port ADMIN_ADDR=127.0.0.1:$order_admin "$services/order" >"$logs/order.log" 2>&1 & pids+=($!) order_pid=$!
wait_healthy notification "$notification_admin" "$notification_port"
wait_healthy order "$order_admin" "$order_port"

# The hot product and 1,000 more for `--products M`, with stock to spare.
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO products (id, name, stock) VALUES ('bench', 'Bench item', 2000000000);
INSERT INTO products (id, name, stock)
    SELECT 'bench-' || i, 'Bench item ' || i, 2000000000 FROM generate_series(1, 1000) AS i;
SQL

command=${BENCH_COMMAND:-all}
flood=()
case ${BENCH_FLOOD:-} in
    "") ;;
    1) flooded=$order_admin ;;
    public) flooded=$order_port ;;
    *) die "BENCH_FLOOD must be 1 or public, not '$BENCH_FLOOD'" ;;
esac
if [ -n "${flooded:-}" ]; then
    [ "$command" = intake ] || die "BENCH_FLOOD needs BENCH_COMMAND=intake"
    # BENCH_FLOOD_PATHS="health": the cheapest answer there is (no database,
    # no actor), the control that shows what any HTTP flood costs here.
    for path in ${BENCH_FLOOD_PATHS:-ready metrics}; do
        flood+=(--flood "http://127.0.0.1:$flooded/$path")
    done
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$results"
if [ "${BENCH_PERF:-}" = 1 ]; then
    perf record -q -a -g -e cpu-clock -F 199 -o "$logs/perf.data" >/dev/null 2>&1 & perf_pid=$!
fi
"$bin/loadgen" \
    --order-url "http://127.0.0.1:$order_port" \
    --database-url "$DATABASE_URL" \
    --amqp-url "$amqp_url" \
    --management-url "${api%/api}" \
    --json "$results/$stamp.json" --svg-dir "$results" --svg-prefix "$stamp-" \
    "$command" "$@" ${flood[@]+"${flood[@]}"}
if [ -n "${perf_pid:-}" ]; then
    kill -INT "$perf_pid" && wait "$perf_pid" || true
    # `head` closes the pipe early: no pipefail here, or SIGPIPE fails the run.
    set +o pipefail
    {
        report() { perf report -i "$logs/perf.data" --stdio --no-children -g none "$@" 2>/dev/null | grep -E '^ +[0-9]'; }
        echo "# CPU by thread name, share of the whole machine (perf, cpu-clock samples)"
        echo "# (a service's actix system runs on a thread named after it; lapin-io-loop,"
        echo "#  tokio-rt-worker: the AMQP client and the tokio workers of every service)"
        report --sort comm | head -20
        for service in order product notification; do
            pid_var=${service}_pid
            echo
            echo "# $service (pid ${!pid_var}, all threads): share of the machine, then its hottest symbols"
            report --pid "${!pid_var}" --percentage absolute --sort pid | awk '{ s += $1 } END { printf "    %.2f%% in total\n", s }'
            report --pid "${!pid_var}" --percentage absolute --sort dso,sym | head -25
        done
        for comm in postgres beam.smp; do
            echo
            echo "# $comm: hottest symbols"
            report --comms "$comm" --percentage absolute --sort dso,sym | head -15
        done
    } > "$results/$stamp.perf.txt"
    set -o pipefail
    echo "perf profile: $results/$stamp.perf.txt"
fi
