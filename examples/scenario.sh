#!/usr/bin/env bash
# The end-to-end scenario (`make demo`, after examples/demo.sh): a pbgm server, Mosquitto,
# a simulated LV feeder whose rooftop PV pushes the voltages up, and the voltage-control
# service obeying the operational limits it gets from pbgm through its policy loader.
# An operator tightens the band through the admin API; the scenario measures the time
# from that change to the first set-point computed with the new limits, and shows the
# feeder's voltages following.
#
# Uses the Mosquitto at 127.0.0.1:1883 when one answers, else starts `mosquitto` on a
# free port. Everything it starts is stopped on exit; its files live in a temporary
# directory (kept with KEEP=1). Exits 0 when every step gave the expected result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
PBGM="${PBGM:-$ROOT/.venv/bin/pbgm}"
MOSQUITTO="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
SCENARIO="$ROOT/examples/scenario"
STATE="$(mktemp -d "${TMPDIR:-/tmp}/pbgm-scenario.XXXXXX")"
PIDS=()

section() { printf '\n=== %s ===\n' "$*"; }
fail() { printf 'scenario failed: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ "${KEEP:-0}" == 1 ]]; then echo "files kept in $STATE"; else rm -rf "$STATE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

answers() {  # answers HOST PORT: something accepts TCP connections there
    "$PYTHON" -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' "$1" "$2" 2>/dev/null
}

wait_until() {  # wait_until SECONDS WHAT COMMAND...
    local limit=$1 what=$2 end=$((SECONDS + $1))
    shift 2
    until "$@"; do
        ((SECONDS < end)) || fail "$what not ready within ${limit} s"
        sleep 0.2
    done
}

healthy() { "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null; }

cd "$STATE"
export PBGM_DATABASE_URL="sqlite:///$STATE/pbgm.db" PBGM_KEYS_DIR="$STATE/keys" PBGM_ACTOR="scenario"

section "1. pbgm: a migrated SQLite repository with the example bundle"
"$PBGM" db upgrade >/dev/null
"$PBGM" policy import "$ROOT/examples/policies" | sed -n '1p;$p'
"$PBGM" keys generate >/dev/null
"$PYTHON" "$SCENARIO/operator.py" bootstrap --db "$PBGM_DATABASE_URL" --secret-file admin.secret

section "2. The data bus"
MQTT_HOST=127.0.0.1 MQTT_PORT=1883
if answers "$MQTT_HOST" "$MQTT_PORT"; then
    echo "using the Mosquitto at $MQTT_HOST:$MQTT_PORT"
else
    MQTT_PORT=$(free_port)
    "$MOSQUITTO" -p "$MQTT_PORT" >mosquitto.log 2>&1 &
    PIDS+=($!)
    wait_until 10 "mosquitto" answers "$MQTT_HOST" "$MQTT_PORT"
    echo "started mosquitto on $MQTT_HOST:$MQTT_PORT"
fi

section "3. pbgm served on a free port, announcing changes on the bus"
API_PORT=$(free_port)
API="http://127.0.0.1:$API_PORT"
PBGM_NOTIFY_BUS_URL="mqtt://$MQTT_HOST:$MQTT_PORT" "$PBGM" serve --bind "127.0.0.1:$API_PORT" --workers 1 >server.log 2>&1 &
PIDS+=($!)
wait_until 30 "pbgm serve" healthy "$API/healthz"
echo "pbgm serving on $API, announcing changes on mqtt://$MQTT_HOST:$MQTT_PORT"

section "4. The operator prepares the voltage service's account and the feeder's band"
"$PYTHON" "$SCENARIO/operator.py" setup --api "$API" --secret-file admin.secret \
    --service-secret-file service.secret

section "5. The simulated feeder and the voltage-control service"
"$PYTHON" "$SCENARIO/feeder.py" --host "$MQTT_HOST" --port "$MQTT_PORT" >feeder.log 2>&1 &
PIDS+=($!)
sed -e "s|http://127.0.0.1:8080|$API|" -e "s|port: 1883|port: $MQTT_PORT|" \
    "$SCENARIO/voltage.yaml" >voltage.yaml
"$PYTHON" -m adapters.cli voltage --config voltage.yaml >voltage.log 2>&1 &
SERVICE_PID=$!
PIDS+=("$SERVICE_PID")
echo "feeder (pid ${PIDS[-2]}) and voltage service (pid $SERVICE_PID) started"

section "6. The operator tightens the band; the set-points follow"
"$PYTHON" "$SCENARIO/operator.py" tighten --api "$API" --secret-file admin.secret \
    --host "$MQTT_HOST" --port "$MQTT_PORT" --v-max 1.04 || {
    tail -n 20 voltage.log feeder.log >&2
    fail "the set-points did not follow the new limits"
}
sleep 1
grep -E '\[feeder\] max voltage' feeder.log | tail -n 1

section "7. SIGTERM: the voltage service stops cleanly"
kill -TERM "$SERVICE_PID"
status=0
wait "$SERVICE_PID" || status=$?
grep -E 'limits in force|data source|final state' voltage.log | sed -e 's/^[0-9-]* [0-9:,]* //'
[[ $status == 0 ]] || fail "the voltage service exited $status"
echo "voltage service exited 0"

section "Done"
