"""PMU ingest: IEEE C37.118.2 frames over UDP, decoded and ready for the bus.

- `parse_config(frame) -> Config` reads a CFG-2 frame; `Config.decode_data(frame)` (or
  `parse_data(frame, config)`) reads a data frame into one `Measurement` per PMU block;
  `parse_frame(frame, configs)` dispatches on the frame type. All raise `FrameError`
  (code `invalid_pmu_frame`, `reason` one of `REASONS`) and nothing else.
- `StreamDecoder` keeps the configuration of each stream IDCODE, learns CFG-2 frames and
  counts dropped frames by reason without raising; `PmuReceiver` runs it on a UDP socket.
- `to_edgeflex(measurement)` builds the `json.edgeflex` payload (signal naming in
  `adapters.pmu._edgeflex`).

Units and the reading of FREQ/DFREQ are documented in `adapters.pmu._data`.
"""

from __future__ import annotations

from adapters.pmu._blocks import AnalogUnit, DigitalUnit, PhasorUnit, PmuConfig
from adapters.pmu._config import Config, parse_config
from adapters.pmu._data import Measurement, Phasor
from adapters.pmu._edgeflex import to_edgeflex
from adapters.pmu._frames import (
    REASONS,
    FrameError,
    FrameHeader,
    FrameType,
    check_frame,
    crc_ccitt,
    stream_id_problem,
)
from adapters.pmu._receiver import DEFAULT_PORT, PmuReceiver
from adapters.pmu._stream import Counters, StreamDecoder, parse_frame


def parse_data(frame: bytes, config: Config) -> tuple[Measurement, ...]:
    """Read a data frame of `config`'s stream; raises `FrameError`."""
    return config.decode_data(frame)


__all__ = [
    "DEFAULT_PORT",
    "REASONS",
    "AnalogUnit",
    "Config",
    "Counters",
    "DigitalUnit",
    "FrameError",
    "FrameHeader",
    "FrameType",
    "Measurement",
    "Phasor",
    "PhasorUnit",
    "PmuConfig",
    "PmuReceiver",
    "StreamDecoder",
    "check_frame",
    "crc_ccitt",
    "parse_config",
    "parse_data",
    "parse_frame",
    "stream_id_problem",
    "to_edgeflex",
]
