"""The MPC's flexibility messages as the market service reads and writes them
(`controls.flex`: `parse_flex_request`, `covee_result`, `parse_flex_result`)."""

from __future__ import annotations

import json

import pytest

from controls import FlexSchedule, InvalidMessageError
from controls.flex import covee_result, parse_flex_request, parse_flex_result
from tests.market.helpers import STATE, forecast, mpc

SCHEDULE = FlexSchedule("active_power", (4, 6), ((-1.0, -2.0), (0.0, -3.0)))


def test_both_request_shapes_read_the_same():
    documented = SCHEDULE.to_message("flex_request")
    assert parse_flex_request(documented) == (SCHEDULE,)
    assert parse_flex_request(json.dumps(SCHEDULE.to_covee())) == (SCHEDULE,)


def test_the_historic_covee_request_with_several_variables_and_node_first_storage():
    message = {
        "variables": ["active_power", "active_power_ESS"],
        "flex_dict": {
            "active_power": {"pred_1": {"node_4": -1.0}, "pred_2": {"node_4": -2.0, "node_5": 1.0}},
            "active_power_ESS": {"node_4": {"pred_1": 3.0, "pred_2": 4.0}},
        },
        "active_nodes": [3, 4, 5, 6],
    }
    power, storage = parse_flex_request(message)
    assert power == FlexSchedule("active_power", (4, 5), ((-1.0, 0.0), (-2.0, 1.0)))
    assert storage == FlexSchedule("active_power_ESS", (4,), ((3.0,), (4.0,)))


@pytest.mark.parametrize(
    ("what_is_refused", "message"),
    [
        ("no variables", {"flex_dict": {}}),
        ("a variable without values", {"variables": ["active_power"], "flex_dict": {}}),
        ("a cell without a prediction", {"variables": ["active_power"],
                                         "flex_dict": {"active_power": {"node_4": {"x": 1}}}}),
        ("a value that is not finite", {"variables": ["active_power"], "flex_dict": {
            "active_power": {"pred_1": {"node_4": 1e999}}}}),
    ],
)  # fmt: skip
def test_malformed_requests_are_refused(what_is_refused, message):
    with pytest.raises(InvalidMessageError):
        parse_flex_request(message)


def test_a_result_round_trips_and_positions_index_the_active_nodes():
    result = covee_result([SCHEDULE], [3, 4, 5, 6], ["active_power", "reactive_power"])
    assert result["active_power"]["vector_position"] == [1, 3]
    assert result["active_power"]["flex_value"]["pred_2"] == [0.0, -3.0]
    assert result["reactive_power"]["vector_position"] == []
    assert parse_flex_result(json.dumps(result)) == (SCHEDULE,)


@pytest.mark.parametrize(
    ("what_is_refused", "edit"),
    [
        ("a position past the active nodes",
         lambda r: r["active_power"].update(vector_position=[1, 9])),
        ("a gap in the predictions", lambda r: r["active_power"]["flex_value"].pop("pred_1")),
        ("no active nodes", lambda r: r.pop("active_nodes")),
        ("a value per position missing",
         lambda r: r["active_power"]["flex_value"].update(pred_1=[1.0])),
    ],
)  # fmt: skip
def test_malformed_results_are_refused(what_is_refused, edit):
    result = covee_result([SCHEDULE], [3, 4, 5, 6])
    edit(result)
    with pytest.raises(InvalidMessageError):
        parse_flex_result(result)


def test_the_mpc_tracks_what_a_result_gives_back():
    controller = mpc()
    request = controller.step(forecast(), STATE).flex_request
    result = covee_result([request], list(request.nodes))
    (traded,) = parse_flex_result(result)
    controller.receive_flex_response(traded.to_message("flex_response"))
    plan = controller.step(forecast(), STATE)
    for k in range(request.horizon - 1):
        for node in request.nodes:
            assert plan.flex_kw[node][k] == pytest.approx(request.value(k + 1, node))
