"""PMU frame parsing throughput: `adapters.pmu` against the requirement and a peer.

Requirement: 50 PMUs at 50 frames/s = 2,500 frames/s, with at least 10x headroom
(>= 25,000 frames/s) on one core. The loop is parse-only (no socket): pre-built data frames
of a realistic PMU (6 phasors, 1 analog, 1 digital word) in two encodings, decoded with
`Config.decode_data` and with the full `StreamDecoder.feed` path (dispatch, counters).
The peer is the `synchrophasor` package (pypmu) decoding the same frames into the same
engineering units (`convert2frame` + `get_measurements`); it needs a Python >= 3.10 shim.

Run: `.venv/bin/python -m benchmarks.pmu`; results go to `benchmarks/results/pmu.json`.
"""

from __future__ import annotations

import collections
import collections.abc
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.pmu import StreamDecoder, parse_config

REQUIRED = 50 * 50
HEADROOM = 10
FRAMES = 500
SOC = 1_700_000_000
RESULTS = Path(__file__).parent / "results" / "pmu.json"

# name | (polar, float phasors, float analogs, float FREQ)
ENCODINGS = [
    ("float polar phasors, int FREQ", (True, True, True, False)),
    ("int rectangular phasors, int FREQ", (False, False, False, False)),
]


def _pypmu() -> Any:
    """Import pypmu's frame module, after the shim its parser needs on Python >= 3.10."""
    if not hasattr(collections, "Sequence"):
        collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]
    from synchrophasor import frame

    return frame


def _frames(fmt: tuple[bool, bool, bool, bool]) -> tuple[Any, bytes, list[bytes]]:
    """A 6-phasor CFG-2 (pypmu object and bytes) and FRAMES data frames of it."""
    pf = _pypmu()
    names = [f"PH{i}" for i in range(6)] + ["AN1"] + [f"D{b}" for b in range(16)]
    cfg = pf.ConfigFrame2(
        7734, 1_000_000, 1, "Bench PMU", 7734, fmt, 6, 1, 1, names,
        [(915527, "v")] * 3 + [(45776, "i")] * 3, [(1, "pow")], [(0, 0xFFFF)],
        50, 1, 50, soc=SOC, frasec=(0,),
    )  # fmt: skip
    frames = []
    for k in range(FRAMES):
        if fmt[1]:
            phasors = [(230.0 + k % 7, 0.01 * (k % 300) - 1.5)] * 6
        else:
            phasors = [(16000 + k % 100, -16000 + k % 50)] * 6
        analog = [float(k)] if fmt[2] else [k % 30000]
        data = pf.DataFrame(
            7734, 0, phasors, k % 50 - 25, k % 40 - 20, analog, [k & 0xFFFF], cfg,
            soc=SOC + k // 50, frasec=(20_000 * (k % 50),),
        )  # fmt: skip
        frames.append(data.convert2bytes())
    return cfg, cfg.convert2bytes(), frames


def _rate(parse: Callable[[bytes], object], frames: list[bytes], rounds: int = 5) -> float:
    """Best-of-`rounds` frames per second of `parse` over all `frames`."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for frame in frames:
            parse(frame)
        best = min(best, time.perf_counter() - start)
    return len(frames) / best


def _row(implementation: str, encoding: str, fps: float) -> dict[str, Any]:
    return {
        "implementation": implementation,
        "encoding": encoding,
        "frames_per_second": round(fps),
        "us_per_frame": round(1e6 / fps, 2),
        "required_frames_per_second": REQUIRED,
        "headroom": round(fps / REQUIRED, 1),
        "meets_10x_headroom": fps >= HEADROOM * REQUIRED,
    }


def _peer_parse(cfg: Any) -> Callable[[bytes], object]:
    pf = _pypmu()
    return lambda frame: pf.CommonFrame.convert2frame(frame, cfg).get_measurements()


def run() -> list[dict[str, Any]]:
    """Measure every implementation on every encoding; one row each."""
    rows = []
    for encoding, fmt in ENCODINGS:
        cfg, cfg_bytes, frames = _frames(fmt)
        config = parse_config(cfg_bytes)
        decoder = StreamDecoder([config])
        assert all(len(config.decode_data(f)) == 1 for f in frames)
        rows.append(_row("adapters.pmu decode_data", encoding, _rate(config.decode_data, frames)))
        rows.append(_row("adapters.pmu StreamDecoder.feed", encoding, _rate(decoder.feed, frames)))
        assert decoder.counters.dropped == 0
        peer = _peer_parse(cfg)
        rows.append(_row("synchrophasor (pypmu) peer", encoding, _rate(peer, frames, rounds=2)))
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    header = f"{'implementation':34} {'encoding':35} {'frames/s':>10} {'us/frame':>9} {'x2500':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['implementation']:34} {r['encoding']:35} {r['frames_per_second']:>10,}"
            f" {r['us_per_frame']:>9} {r['headroom']:>7}"
        )


def main() -> None:
    rows = run()
    _print(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "time": time.time()}
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    ours = [r for r in rows if r["implementation"].startswith("adapters.pmu")]
    verdict = "met" if all(r["meets_10x_headroom"] for r in ours) else "NOT met"
    print(f"\nrequirement {REQUIRED:,} frames/s with {HEADROOM}x headroom: {verdict}")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
