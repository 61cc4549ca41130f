#!/usr/bin/env bash
# CI smoke run of the benchmark, so that loadgen and bench/run.sh never rot:
# the debug binaries, a few hundred orders, a few seconds per phase, no
# thresholds. It fails only if a phase fails, a file is missing, or an
# accepted order never became final.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

BENCH_PROFILE=debug BENCH_RESULTS="$out" bench/run.sh --quiet \
    --clients 8 --seconds 2 --rate 100 --drain-seconds 10 \
    --orders 300 --products 4 --timeout-seconds 120 --settle-seconds 120 \
    --raw-seconds 1

python3 - "$out" <<'PY'
import json, pathlib, sys

out = pathlib.Path(sys.argv[1])
[report] = out.glob("*.json")
figures = json.loads(report.read_text())
for phase in ("raw", "intake_closed", "intake_open", "end_to_end"):
    assert figures.get(phase), f"no {phase} figures in {report.name}"
e2e = figures["end_to_end"]
assert e2e["accepted"] > 0, "the burst had no order accepted"
assert e2e["still_pending"] == 0, f"{e2e['still_pending']} accepted orders never became final"
assert figures["fractions"], "no fraction of a raw limit"
for chart in ("latency", "throughput"):
    [svg] = out.glob(f"*-{chart}.svg")
    assert svg.read_text().startswith("<svg"), f"{svg.name} is not an SVG"
print(f"smoke: {e2e['accepted']} orders end to end, every phase reported")
PY
