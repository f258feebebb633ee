"""The PMU service: C37.118.2 frames from UDP, published on the bus as `json.edgeflex`.

An `adapters.pmu.PmuReceiver` listens on `host:port`; every measurement (one PMU
block of a data frame) goes out as one `json.edgeflex` object (`to_edgeflex`:
`{"<station> <phasor> amplitude": ..., "<station> frequency": ..., "created": ms}`; a
value the PMU marked missing is `null`, never a number) on
the topic made from `topic` (placeholders `{station}` and `{id_code}`; `+`, `#`, `/`
and NUL in a station name become `_`, so a PMU cannot choose a topic outside its own).
Bad frames are counted by reason and dropped; the receiver never stops on them.

Local config section `pmu`:

```yaml
pmu:
  host: 127.0.0.1            # bind a trusted interface: UDP sources can be spoofed
  port: 4713
  id_codes: [7734]           # optional: refuse other streams
  topic: /edgeflex/{station}
  prefix: null               # signal name prefix, default the station name
  qos: 0
  config_files: [pmu3.cfg2]  # optional: CFG-2 frames (binary) known from the start
```
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters._rules import publish_topic, qos_setting
from adapters.pmu import (
    DEFAULT_PORT,
    FrameError,
    Measurement,
    PmuReceiver,
    parse_config,
    stream_id_problem,
    to_edgeflex,
)
from adapters.services._runner import Counters, PolicySink, number, section
from pbgm.bus import Bus
from pbgm.codecs import get_codec
from pbgm.errors import ConfigurationError, PbgmError

log = logging.getLogger(__name__)

TOPIC = "/edgeflex/{station}"
EDGEFLEX = get_codec("json.edgeflex")  # flat, with `created`, nothing non-finite
_UNSAFE = re.compile(r"[+#/\x00]")


def topic_for(template: str, measurement: Measurement) -> str:
    """The topic of one measurement; the station name cannot add levels or wildcards."""
    station = _UNSAFE.sub("_", measurement.station) or "_"
    return template.format(station=station, id_code=measurement.pmu.id_code)


def _template(template: Any) -> str:
    """The `topic` setting checked: placeholders `{station}` and `{id_code}` only, and a
    topic name to publish on once they are filled (no wildcard, not empty)."""
    if not isinstance(template, str):
        raise ConfigurationError("`pmu.topic` must be text such as `/edgeflex/{station}`")
    try:
        filled = template.format(station="s", id_code=1)
    except (KeyError, IndexError, ValueError):
        raise ConfigurationError("`pmu.topic` may use `{station}` and `{id_code}` only") from None
    publish_topic(filled, "pmu.topic")
    return template


def _configs(paths: Any, base: Path) -> list[Any]:
    configs = []
    for path in paths or ():
        try:
            configs.append(parse_config((base / path).read_bytes()))
        except OSError as error:
            raise ConfigurationError(f"cannot read cfg-2 file `{path}`: {error.strerror}") from None
        except FrameError as error:
            raise ConfigurationError(f"cfg-2 file `{path}`: {error}") from None
    return configs


class PmuService:
    """Receives frames until `stop()` and publishes each measurement."""

    name = "pmu"

    def __init__(self, bus: Bus, config: Mapping[str, Any], *, base: Path = Path()) -> None:
        self.bus = bus
        self.template = _template(config.get("topic", TOPIC))
        self.prefix = config.get("prefix")
        if self.prefix is not None and not isinstance(self.prefix, str):
            raise ConfigurationError("`pmu.prefix` must be text (the signal names' prefix)")
        self.qos = qos_setting(config.get("qos", 0), "pmu.qos")
        id_codes = config.get("id_codes")
        if id_codes is not None and not isinstance(id_codes, list):
            raise ConfigurationError("`pmu.id_codes` must be a list of stream ids")
        for id_code in id_codes or ():
            problem = stream_id_problem(id_code)
            if problem is not None:
                raise ConfigurationError(f"`pmu.id_codes`: {problem}")
        self.counters = Counters("published", "publish_errors")
        self.receiver = PmuReceiver(
            str(config.get("host", "127.0.0.1")),
            int(number(config, "port", DEFAULT_PORT, 0, 65535)),
            configs=_configs(config.get("config_files"), base),
            id_codes=id_codes,
            on_measurement=self.publish,
            poll_interval=0.2,
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.receiver.address

    def sinks(self) -> Mapping[str, PolicySink]:
        return {}

    def missing_policies(self) -> list[str]:
        return []  # the PMU service needs no policy

    def publish(self, measurement: Measurement) -> None:
        """One measurement as `json.edgeflex` on its topic; failures counted, not raised."""
        try:
            topic = topic_for(self.template, measurement)
            payload = EDGEFLEX.encode(to_edgeflex(measurement, prefix=self.prefix))
            self.bus.publish(topic, payload, qos=self.qos)
        except PbgmError as error:
            self.counters.bump("publish_errors")
            log.warning("cannot publish a measurement: %s", error.message)
            return
        self.counters.bump("published")

    def start(self) -> None:
        host, port = self.receiver.address
        log.info("receiving C37.118.2 frames on udp %s:%s", host, port)

    def run(self) -> None:
        self.receiver.serve()

    def stop(self) -> None:
        self.receiver.close()

    def close(self) -> None:
        self.receiver.close()

    def state(self) -> Mapping[str, Any]:
        return {**self.receiver.counters.as_dict(), **self.counters.snapshot()}

    def stats(self) -> dict[str, int]:
        """Every counter of the receiver and the service, and (`bus_`) of its bus."""
        out = {k: int(v) for k, v in self.state().items()}
        bus_stats = getattr(self.bus, "stats", None)
        if callable(bus_stats):
            out.update({f"bus_{k}": int(v) for k, v in bus_stats().items()})
        return out


def make_service(config: Mapping[str, Any], bus: Bus, base: Path = Path()) -> PmuService:
    """The runner's factory: the `pmu` section of the service config."""
    return PmuService(bus, section(config, "pmu"), base=base)
