"""Frequency regulation metering: telling devices that regulate from those that do not."""

from __future__ import annotations

import numpy as np
import pytest

from controls import MeteringThresholds, meter_regulation
from controls.testing import simulate_swing

EVENT = simulate_swing(4.0, f_noise_hz=0.001, seed=3)
T, F = EVENT.t, EVENT.f_hz
DF = F - 50.0
RNG = np.random.default_rng(7)


def noisy(p: np.ndarray, sd: float = 0.5) -> np.ndarray:
    return p + RNG.normal(0.0, sd, p.size)


DEVICES = {
    "droop_bess": noisy(100.0 - 400.0 * DF),  # 400 kW/Hz against the frequency
    "flat_pv": noisy(np.full(T.size, 50.0)),
    "adverse_load": noisy(80.0 + 300.0 * DF),  # moves with the frequency
    "tiny_droop": 20.0 - 0.2 * DF,  # right sign, negligible gain
    "cloud_ramp": noisy(30.0 + 5.0 * np.sin(0.9 * T)),
}


@pytest.mark.parametrize(
    ("device", "regulating", "reason"),
    [
        ("droop_bess", True, "regulating"),
        ("flat_pv", False, "uncorrelated"),
        ("adverse_load", False, "wrong_sign"),
        ("tiny_droop", False, "gain_too_small"),
        ("cloud_ramp", False, "uncorrelated"),
    ],
)
def test_metering_tells_regulating_devices_from_the_others(device, regulating, reason):
    result = meter_regulation(T, F, DEVICES)[device]
    assert (result.regulating, result.reason) == (regulating, reason)


def test_the_regulating_gain_is_measured():
    result = meter_regulation(T, F, DEVICES)["droop_bess"]
    assert result.gain_kw_per_hz == pytest.approx(400.0, rel=0.05)
    assert result.correlation < -0.95


def test_a_quiet_frequency_gives_no_verdict():
    flat = 50.0 + RNG.normal(0.0, 0.001, T.size)
    result = meter_regulation(T, flat, {"droop_bess": 100.0 - 400.0 * (flat - 50.0)})
    assert result["droop_bess"].reason == "insufficient_excitation"
    assert not result["droop_bess"].regulating


def test_the_gain_threshold_is_the_stated_one():
    strict = MeteringThresholds(min_gain_kw_per_hz=500.0)
    assert meter_regulation(T, F, DEVICES, strict)["droop_bess"].reason == "gain_too_small"
