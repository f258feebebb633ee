"""A simulated LV feeder for the scenario: rooftop PV pushes the voltages up.

The 400 V feeder of `controls.testing.lv_feeder` (main line 0-1-...-6, lateral 3-7-8)
with PV at nodes 5, 6 and 8 and a light load everywhere; the transformer (slack) holds
`--slack-pu`. Every `--period` seconds it solves the AC power flow with the set-points
it last received and publishes, on the edgeFLEX topics,

    /voltage_control/measuremnts/voltage  {"voltage_measurements": {"node_1": 1.01, ...}}
    /voltage_control/measuremnts/pv       {"pv_input_measurements": {"node_6": 40.0}}

It applies what the controller publishes on `/voltage_control/control/reactive_power`
(kvar), `.../active_power` (a PV curtailment cap, kW) and `.../active_power_ESS` (kW,
positive = discharging). Every two seconds one line goes to stdout: the highest voltage
and the set-points in force. Runs until SIGTERM/SIGINT, then exits 0.

    python examples/scenario/feeder.py --host 127.0.0.1 --port 1883
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from controls.testing import lv_feeder, power_flow
from pbgm.bus import BusMessage, open_bus

MQTT = "adapters.mqtt:open_mqtt_bus"  # the MQTT bus, without an installed entry point
VOLTAGE_TOPIC = "/voltage_control/measuremnts/voltage"
PV_TOPIC = "/voltage_control/measuremnts/pv"
CONTROL = "/voltage_control/control/"
MEASURED_PV = (6,)  # the inverter the controller may curtail reports its availability


class Feeder:
    """The plant: PV and load injections plus the set-points last received."""

    def __init__(self, pv_kw: float, load_kw: float, slack_pu: float) -> None:
        self.grid = lv_feeder()
        self.pv = {5: pv_kw, 6: pv_kw, 8: pv_kw}
        self.load = {n: load_kw for n in self.grid.nodes}
        self.slack_pu = slack_pu
        self.setpoints: dict[str, dict[int, float]] = {
            "reactive_power": {},
            "active_power": {},
            "active_power_ESS": {},
        }
        self.lock = threading.Lock()

    def take(self, message: BusMessage) -> None:
        """A set-point message; anything unreadable is ignored (and said so)."""
        variable = message.topic.removeprefix(CONTROL)
        try:
            values = json.loads(message.payload)[variable]
            parsed = {int(k.removeprefix("node_")): float(v) for k, v in values.items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            print(f"[feeder] ignored an unreadable message on {message.topic}", flush=True)
            return
        with self.lock:
            self.setpoints[variable] = parsed

    def voltages(self) -> dict[int, float]:
        with self.lock:
            caps, ess = self.setpoints["active_power"], self.setpoints["active_power_ESS"]
            q = dict(self.setpoints["reactive_power"])
        p = {n: -load for n, load in self.load.items()}
        for node, available in self.pv.items():
            p[node] += min(available, caps.get(node, available))
        for node, value in ess.items():
            p[node] = p.get(node, 0.0) + value
        return power_flow(self.grid, p, q, v_slack_pu=self.slack_pu)

    def summary(self, voltages: dict[int, float]) -> str:
        node = max(voltages, key=voltages.__getitem__)
        with self.lock:
            shown = {k: {n: round(v, 1) for n, v in s.items()} for k, s in self.setpoints.items()}
        return f"[feeder] max voltage {voltages[node]:.4f} pu at node {node}; set-points {shown}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--period", type=float, default=0.2, help="seconds between measurements")
    parser.add_argument("--pv-kw", type=float, default=40.0, help="PV output at nodes 5, 6, 8")
    parser.add_argument("--load-kw", type=float, default=2.0, help="load at every node")
    parser.add_argument("--slack-pu", type=float, default=1.02, help="transformer voltage")
    args = parser.parse_args(argv)

    feeder = Feeder(args.pv_kw, args.load_kw, args.slack_pu)
    bus = open_bus({"factory": MQTT, "host": args.host, "port": args.port})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for variable in feeder.setpoints:
        bus.subscribe(CONTROL + variable, feeder.take, qos=1)
    print(f"[feeder] publishing every {args.period} s on {VOLTAGE_TOPIC}", flush=True)
    shown_at = 0.0
    try:
        while not stop.wait(args.period):
            voltages = feeder.voltages()
            created = round(time.time() * 1000)  # the measuring time: stale and replayed
            message = {"voltage_measurements": {f"node_{n}": v for n, v in voltages.items()}}
            message["created"] = created  # samples are recognised by it
            bus.publish(VOLTAGE_TOPIC, json.dumps(message).encode(), qos=0)
            pv = {"pv_input_measurements": {f"node_{n}": feeder.pv[n] for n in MEASURED_PV}}
            bus.publish(PV_TOPIC, json.dumps({**pv, "created": created}).encode(), qos=0)
            if time.monotonic() - shown_at >= 2.0:
                print(feeder.summary(voltages), flush=True)
                shown_at = time.monotonic()
    finally:
        bus.close()
    print("[feeder] stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
