"""Frame dispatch and per-stream state: which configuration reads which data frame.

`parse_frame` is the pure step (frame + known configurations -> result, or a typed
`FrameError`); `StreamDecoder` keeps the configurations per stream IDCODE, learns new
ones from CFG-2 frames and counts every frame it drops, by reason, without ever raising.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType

from adapters.pmu._config import Config, parse_config
from adapters.pmu._data import Measurement
from adapters.pmu._frames import (
    MIN_FRAME_SIZE,
    REASONS,
    SYNC_BYTE,
    FrameError,
    FrameType,
    check_frame,
    stream_id_problem,
)
from pbgm.errors import ConfigurationError

logger = logging.getLogger(__name__)

MAX_STREAMS = 1024
"""Streams learned from CFG-2 frames at most: spoofed UDP cannot fill the memory."""


def parse_frame(
    frame: bytes,
    configs: Mapping[int, Config],
    *,
    id_codes: Collection[int] | None = None,
) -> Config | tuple[Measurement, ...] | None:
    """Read one frame: a `Config` for CFG-2, measurements for data, `None` for the rest.

    `configs` maps stream IDCODEs to their configuration. With `id_codes`, frames of any
    other stream that has no configuration are refused as `unknown_id` (a CFG-2 cannot
    introduce a new stream). Header, command, CFG-1 and CFG-3 frames are checked and
    ignored. Raises `FrameError` only.
    """
    if len(frame) < MIN_FRAME_SIZE or frame[0] != SYNC_BYTE:
        check_frame(frame)  # raises with the precise reason
    frame_type, id_code = frame[1] >> 4, (frame[4] << 8) | frame[5]
    config = configs.get(id_code)
    if frame_type == FrameType.DATA and config is not None:
        return config.decode_data(frame)
    header = check_frame(frame)
    if config is None and id_codes is not None and id_code not in id_codes:
        raise FrameError("unknown_id", f"stream `{id_code}` is not expected")
    if frame_type == FrameType.DATA:
        raise FrameError("no_config", f"data of stream `{id_code}` before its configuration")
    if header.frame_type == FrameType.CFG2:
        return parse_config(frame)
    return None


@dataclass
class Counters:
    """Frames seen, kept and dropped (one counter per drop reason)."""

    frames: int = 0
    configs: int = 0
    data_frames: int = 0
    measurements: int = 0
    ignored: int = 0
    bad_sync: int = 0
    truncated: int = 0
    size_mismatch: int = 0
    bad_crc: int = 0
    unknown_type: int = 0
    bad_version: int = 0
    bad_header: int = 0
    bad_time: int = 0
    unknown_id: int = 0
    no_config: int = 0
    bad_config: int = 0
    internal_error: int = 0
    callback_error: int = 0

    @property
    def dropped(self) -> int:
        """Frames refused, for any reason."""
        refused: int = sum(getattr(self, reason) for reason in REASONS)
        return refused + self.internal_error

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class StreamDecoder:
    """Configurations per stream IDCODE, and the frames-to-measurements step.

    Configurations come from the constructor or from CFG-2 frames on the wire (a newer
    CFG-2 replaces the older one of the same stream); a CFG-2 of a new stream beyond
    `max_streams` is refused as `unknown_id`. Not thread-safe: one reader.
    """

    def __init__(
        self,
        configs: Iterable[Config] = (),
        *,
        id_codes: Iterable[int] | None = None,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self._configs: dict[int, Config] = {c.id_code: c for c in configs}
        self._id_codes = frozenset(id_codes) if id_codes is not None else None
        for id_code in sorted(self._id_codes or (), key=repr):
            problem = stream_id_problem(id_code)
            if problem is not None:
                raise ConfigurationError(f"`id_codes`: {problem}")
        if type(max_streams) is not int or max_streams < 1:
            raise ConfigurationError(
                f"`max_streams` must be a whole number of at least 1, not `{max_streams}`"
            )
        self._max_streams = max_streams
        self.counters = Counters()

    @property
    def configs(self) -> Mapping[int, Config]:
        return MappingProxyType(self._configs)

    def add_config(self, config: Config) -> None:
        """Use `config` for the data frames of its stream from now on."""
        if self._configs.get(config.id_code) != config:
            self._configs[config.id_code] = config

    def feed(self, frame: bytes) -> tuple[Measurement, ...]:
        """The measurements in `frame`; never raises: a bad frame is counted and dropped."""
        counters = self.counters
        counters.frames += 1
        try:
            result = parse_frame(frame, self._configs, id_codes=self._id_codes)
        except FrameError as error:
            setattr(counters, error.reason, getattr(counters, error.reason) + 1)
            logger.debug("pmu frame dropped (%s): %s", error.reason, error.message)
            return ()
        except Exception:
            counters.internal_error += 1
            logger.exception("pmu frame dropped after an unexpected error")
            return ()
        return self._take(result)

    def _take(self, result: Config | tuple[Measurement, ...] | None) -> tuple[Measurement, ...]:
        counters = self.counters
        if isinstance(result, tuple):
            counters.data_frames += 1
            counters.measurements += len(result)
            return result
        if result is None:
            counters.ignored += 1
        elif result.id_code in self._configs or len(self._configs) < self._max_streams:
            counters.configs += 1
            self.add_config(result)
        else:
            counters.unknown_id += 1
            logger.debug(
                "pmu stream `%s` refused: %s streams known", result.id_code, self._max_streams
            )
        return ()
