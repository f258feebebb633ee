"""The radial feeder model: sensitivities against a full power flow, topology checks."""

from __future__ import annotations

import numpy as np
import pytest

from controls import InvalidTopologyError, Line, RadialFeeder, chain_feeder
from controls.errors import InvalidMeasurementError
from controls.testing import lv_feeder, power_flow


def test_linear_model_tracks_the_power_flow_for_small_injections():
    feeder = lv_feeder()
    model = feeder.sensitivities()
    p, q = {6: 10.0, 8: 5.0}, {4: -4.0}
    exact = power_flow(feeder, p, q)
    linear = model.voltages(model.vector(p), model.vector(q))
    for node in model.nodes:
        rise = exact[node] - 1.0
        assert linear[model.index[node]] - 1.0 == pytest.approx(rise, rel=0.05, abs=1e-5)


def test_sensitivities_are_symmetric_and_grow_along_the_feeder():
    model = lv_feeder().sensitivities()
    assert np.allclose(model.dv_dp, model.dv_dp.T)
    assert np.allclose(model.dv_dq, model.dv_dq.T)
    main = model.positions([1, 2, 3, 4, 5, 6])
    assert np.all(np.diff(model.dv_dp[main, main]) > 0)
    # a lateral node shares only the common part of the path with the main line
    assert model.dv_dp[model.index[8], model.index[6]] == pytest.approx(
        model.dv_dp[model.index[3], model.index[3]]
    )


def test_sensitivity_scales_with_the_inverse_square_of_the_base():
    low = chain_feeder(3, r_ohm=0.1, x_ohm=0.05, v_nominal_v=400.0).sensitivities()
    high = chain_feeder(3, r_ohm=0.1, x_ohm=0.05, v_nominal_v=800.0).sensitivities()
    assert np.allclose(low.dv_dp, 4 * high.dv_dp)


@pytest.mark.parametrize(
    ("what_is_wrong", "lines"),
    [
        (
            "a node with two parent lines",
            [Line(0, 1, 0.1, 0.1), Line(0, 2, 0.1, 0.1), Line(1, 2, 0.1, 0.1)],
        ),
        ("a line feeding the slack", [Line(1, 0, 0.1, 0.1)]),
        ("an island not connected to the slack", [Line(0, 1, 0.1, 0.1), Line(5, 6, 0.1, 0.1)]),
        ("a line without impedance", [Line(0, 1, 0.0, 0.0)]),
        ("a negative resistance", [Line(0, 1, -0.1, 0.1)]),
    ],
)
def test_non_radial_feeders_are_rejected(what_is_wrong, lines):
    with pytest.raises(InvalidTopologyError) as info:
        RadialFeeder(tuple(lines), v_nominal_v=400.0)
    assert info.value.code == "invalid_topology"


def test_unknown_nodes_are_reported_by_id():
    model = lv_feeder().sensitivities()
    with pytest.raises(InvalidMeasurementError, match="`42`"):
        model.positions([1, 42])
