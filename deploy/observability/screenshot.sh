#!/usr/bin/env bash
# The README's dashboard picture (docs/dashboard.png), from real data, with
# no Docker and no Grafana: the provisioned dashboard JSON drawn by
# render_dashboard.py from a local Prometheus that scraped the three services
# while they were under load.
#
#   deploy/observability/screenshot.sh [output.png]      # default docs/dashboard.png
#
# Native and local only (127.0.0.1), about 5 minutes once built. It
#  1. builds the release binaries (order, product, notification, loadgen);
#  2. creates a scratch PostgreSQL database and RabbitMQ vhost on the local
#     servers (as bench/run.sh does: trust auth as postgres, guest account,
#     rabbitmqctl), with the bench products and a 'limited' one of little stock;
#  3. starts a Prometheus of its own (the binary directly: a temporary config
#     and storage directory, a free port, no system service) scraping the
#     three services and RabbitMQ's 127.0.0.1:15692
#     /metrics/detailed?family=queue_coarse_metrics, restricted to the scratch
#     vhost, every 5 s, with the job names of deploy/observability/prometheus.yml;
#  4. starts the three services on free ports and drives them (~4 minutes):
#        0 s   300 orders/s steady (open loop, with a customer email) for 200 s,
#              and 25/s on 'limited' (stock 1,500) throughout: confirmed until
#              its stock runs out after about a minute, rejected after
#       30 s   a closed-loop burst on top (32 clients, 15 s): the queues fill
#       45 s   the scratch database refuses connections for 15 s, while the
#              queues still hold the burst: intake answers 503, the consumers
#              pause, the outboxes wait
#       85 s   three malformed OrderCreated messages published to
#              order_exchange: dead-lettered by product and notification
#      100 s   the product service stopped for 30 s: its queue fills, then drains
#      200 s   load ends; 30 s more of idle
#  5. renders the dashboard over that window into the PNG;
#  6. stops everything it started and drops the database and vhost, also on
#     failure or Ctrl-C (trap), within a global time limit
#     (SCREENSHOT_TIMEOUT, 2400 s by default, build included).
#
# Python: a venv in ${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-dashboard-venv
# with pinned matplotlib. Prometheus: `prometheus` from PATH, else the Debian
# package's binary, fetched with `apt-get download` and unpacked into
# ${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-dashboard-prometheus (installing
# the package would start a system service).
#
# The dashboard sums queue figures by queue over every vhost; here the scrape
# itself is restricted to the scratch vhost (`vhost` parameter of RabbitMQ's
# detailed endpoint), so other vhosts on the shared broker do not mix in.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { printf 'screenshot.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '[screenshot %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

output=${1:-docs/dashboard.png}
dashboard=deploy/observability/grafana/dashboards/ecommerce.json
cache=${XDG_CACHE_HOME:-$HOME/.cache}
venv=$cache/ecommerce-dashboard-venv
limit=${SCREENSHOT_TIMEOUT:-2400}

# --- global time limit: a watchdog that interrupts this script (the trap cleans up)
self=$$
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$limit" & sleeper=$!
    wait "$sleeper" && printf 'screenshot.sh: time limit of %s s reached\n' "$limit" >&2 && kill -TERM "$self"
) 2>/dev/null &
watchdog=$!

# --- tools -------------------------------------------------------------------
requirements=(
    matplotlib==3.10.8 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0
    kiwisolver==1.5.1 numpy==2.4.6 packaging==26.4 pillow==13.0.0
    pyparsing==3.3.3 python-dateutil==4.0.0
)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "${requirements[*]}" ]; then
    say "preparing the Python venv $venv"
    python3 -m venv "$venv"
    timeout 600 "$venv/bin/pip" install -q "${requirements[@]}"
    printf '%s' "${requirements[*]}" >"$venv/.requirements"
fi

if command -v prometheus >/dev/null; then
    prometheus=$(command -v prometheus)
else
    prometheus=$cache/ecommerce-dashboard-prometheus/root/usr/bin/prometheus
    if [ ! -x "$prometheus" ]; then
        say "fetching the Debian prometheus package (binary only, no service)"
        mkdir -p "$cache/ecommerce-dashboard-prometheus"
        (cd "$cache/ecommerce-dashboard-prometheus" && timeout 300 apt-get download -q prometheus >/dev/null 2>&1 \
            && dpkg-deb -x prometheus_*.deb root) || die "could not fetch the prometheus package (apt-get download prometheus)"
    fi
fi

say "building the release binaries"
timeout 1800 cargo build --release --bins -q -p order -p product -p notification -p migration -p messaging -p loadgen
bin=target/release

pg=(-U postgres -h 127.0.0.1)
pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL is not answering on 127.0.0.1:5432"
curl -fsS -o /dev/null -u guest:guest http://127.0.0.1:15672/api/overview \
    || die "the RabbitMQ management API is not answering on 127.0.0.1:15672"
curl -fsS -o /dev/null 'http://127.0.0.1:15692/metrics' \
    || die "RabbitMQ's Prometheus endpoint is not answering on 127.0.0.1:15692 (rabbitmq-plugins enable rabbitmq_prometheus)"

# --- scratch database, vhost, processes, and their cleanup -------------------
name="dashboard_$(date +%s)_$$"
work=$(mktemp -d)
pids=()
product_pid=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    kill "$watchdog" 2>/dev/null || true
    [ -n "$product_pid" ] && pids+=("$product_pid")
    if [ ${#pids[@]} -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    if [ -n "${SCREENSHOT_KEEP_TSDB:-}" ] && [ -d "$work/tsdb" ]; then
        rm -rf "$SCREENSHOT_KEEP_TSDB" && cp -r "$work/tsdb" "$SCREENSHOT_KEEP_TSDB" \
            && printf 'screenshot.sh: Prometheus storage kept in %s (window %s..%s)\n' \
                "$SCREENSHOT_KEEP_TSDB" "${render_from:-?}" "${render_to:-?}" >&2
    fi
    psql "${pg[@]}" -q -d postgres -c "ALTER DATABASE \"$name\" WITH ALLOW_CONNECTIONS true" >/dev/null 2>&1 || true
    dropdb "${pg[@]}" --if-exists --force "$name" || true
    rabbitmqctl -q delete_vhost "$name" >/dev/null 2>&1 || true
    if [ "$status" -ne 0 ]; then
        for log in "$work"/*.log; do
            [ -s "$log" ] || continue
            printf '\n--- last lines of %s\n' "$(basename "$log")" >&2
            tail -n 15 "$log" >&2
        done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

createdb "${pg[@]}" "$name"
rabbitmqctl -q add_vhost "$name" >/dev/null
rabbitmqctl -q set_permissions -p "$name" guest '.*' '.*' '.*' >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$name" AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$name"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_http() { # wait_http WHAT URL [tries of 0.1 s]
    for _ in $(seq "${3:-300}"); do
        curl -fs -o /dev/null "$2" && return 0
        sleep 0.1
    done
    die "$1 did not answer $2"
}
product_port=$(port) notification_port=$(port) order_port=$(port)
# Each service's admin listener: /health, /ready and /metrics.
product_admin=$(port) notification_admin=$(port) order_admin=$(port)
prometheus_port=19090
free "$prometheus_port" || prometheus_port=$(port)

# --- Prometheus ---------------------------------------------------------------
cat >"$work/prometheus.yml" <<YAML
# Written by deploy/observability/screenshot.sh: the jobs of
# deploy/observability/prometheus.yml, pointed at this run's processes.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: order
    static_configs: [{targets: ["127.0.0.1:$order_admin"]}]
  - job_name: product
    static_configs: [{targets: ["127.0.0.1:$product_admin"]}]
  - job_name: notification
    static_configs: [{targets: ["127.0.0.1:$notification_admin"]}]
  - job_name: rabbitmq
    metrics_path: /metrics/detailed
    params:
      family: [queue_coarse_metrics]
      vhost: ["$name"]
    static_configs: [{targets: ["127.0.0.1:15692"]}]
YAML
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prometheus_port" --log.level=warn \
    >"$work/prometheus.log" 2>&1 & pids+=($!)
wait_http prometheus "http://127.0.0.1:$prometheus_port/-/ready"

# --- the services --------------------------------------------------------------
export LOG_LEVEL=${LOG_LEVEL:-warn}
start_product() {
    HTTP_ADDR=127.0.0.1:$product_port ADMIN_ADDR=127.0.0.1:$product_admin "$bin/product" >>"$work/product.log" 2>&1 &
    product_pid=$!
}
# The broker's topology and the schema first: the services wait for both,
# they never declare or migrate.
"$bin/topology" >"$work/topology.log" 2>&1 || { cat "$work/topology.log" >&2; exit 1; }
"$bin/migration" up >"$work/migration.log" 2>&1 || { cat "$work/migration.log" >&2; exit 1; }
start_product
wait_http product "http://127.0.0.1:$product_admin/health"
HTTP_ADDR=127.0.0.1:$notification_port ADMIN_ADDR=127.0.0.1:$notification_admin "$bin/notification" >"$work/notification.log" 2>&1 & pids+=($!)
# Its loads come from one address, far over the per-client limit.
ORDER_RATE_LIMIT=off HTTP_ADDR=127.0.0.1:$order_port ADMIN_ADDR=127.0.0.1:$order_admin "$bin/order" >"$work/order.log" 2>&1 & pids+=($!)
wait_http notification "http://127.0.0.1:$notification_admin/health"
wait_http order "http://127.0.0.1:$order_admin/health"

psql "${pg[@]}" -q -v ON_ERROR_STOP=1 "$name" <<'SQL'
INSERT INTO products (id, name, stock) VALUES ('bench', 'Bench item', 2000000000);
INSERT INTO products (id, name, stock) VALUES ('limited', 'Limited edition', 1500);
SQL

# --- load ----------------------------------------------------------------------
began=$(date +%s)
render_from=$((began - 15))
at() { # at SECONDS: sleep until SECONDS after the load began
    local now; now=$(date +%s)
    [ "$(($1 - (now - began)))" -gt 0 ] && sleep "$(($1 - (now - began)))"
    return 0
}

say "load: 300/s steady and 25/s on 'limited' for 200 s (Prometheus on 127.0.0.1:$prometheus_port)"
timeout 300 "$bin/loadgen" --quiet --order-url "http://127.0.0.1:$order_port" \
    intake --rate 300 --seconds 200 --connections 32 --drain-seconds 20 \
    --customer-email ada@example.com >"$work/steady.log" 2>&1 & steady=$!
timeout 300 "$bin/loadgen" --quiet --order-url "http://127.0.0.1:$order_port" \
    intake --rate 25 --seconds 200 --connections 4 --drain-seconds 20 \
    --product-id limited --customer-email grace@example.com >"$work/limited.log" 2>&1 & limited=$!
pids+=("$steady" "$limited")

at 30
say "burst: closed loop, 32 clients, 15 s"
timeout 120 "$bin/loadgen" --quiet --order-url "http://127.0.0.1:$order_port" \
    intake --closed --clients 32 --seconds 15 >"$work/burst.log" 2>&1 || say "the burst failed"

at 45
say "database refusing connections for 15 s"
psql "${pg[@]}" -q -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER DATABASE "$name" WITH ALLOW_CONNECTIONS false;
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$name' AND pid <> pg_backend_pid();
SQL
at 60
psql "${pg[@]}" -q -d postgres -v ON_ERROR_STOP=1 -c "ALTER DATABASE \"$name\" WITH ALLOW_CONNECTIONS true" >/dev/null
say "database back"

at 85
say "poison: three malformed messages to order_exchange"
for i in 1 2 3; do
    curl -fsS -o /dev/null -u guest:guest -H 'content-type: application/json' \
        -X POST "http://127.0.0.1:15672/api/exchanges/$name/order_exchange/publish" \
        -d "{\"properties\":{\"content_type\":\"application/json\"},\"routing_key\":\"\",\"payload\":\"{\\\"not\\\":\\\"an event $i\\\"}\",\"payload_encoding\":\"string\"}"
done

at 100
say "product service stopped for 30 s"
kill -TERM "$product_pid" && wait "$product_pid" 2>/dev/null || true
product_pid=
at 130
start_product
wait_http product "http://127.0.0.1:$product_admin/health"
say "product service back"

wait "$steady" || say "the steady load ended with status $? ($(tail -n 3 "$work/steady.log" | tr '\n' ' '))"
wait "$limited" || say "the 'limited' load ended with status $?"
for run in steady limited burst; do
    say "$run: $(grep -m1 -i 'accepted' "$work/$run.log" || tail -n 1 "$work/$run.log")"
done
at 230
render_to=$(date +%s)

# --- picture --------------------------------------------------------------------
say "rendering $output ($((render_to - render_from)) s window)"
mkdir -p "$(dirname "$output")"
timeout 300 "$venv/bin/python" deploy/observability/render_dashboard.py \
    --prometheus "http://127.0.0.1:$prometheus_port" --dashboard "$dashboard" \
    --start "$render_from" --end "$render_to" --step 5 --report --output "$output"
say "done: $output ($(du -h "$output" | cut -f1))"
