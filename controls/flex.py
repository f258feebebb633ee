"""Flexibility request and response messages between the MPC and pbgm (design.md §7).

The documented shape (edgeFLEX D4.3 §6.4), one message per controllable variable:

    {"variable": "active_power", "nodes": [4, 6],
     "flex_request": {"prediction 1": [k_4, k_6], "prediction 2": [...], ...}}

and the response is the same with `flex_response`. Values are kW (kvar for
`reactive_power`), positive = more injection into the grid; "prediction k" is the
k-th step of the MPC horizon counted from the cycle that issued the request.

Mapping to the historic CoVee shape on `/edgeflex/goflex/flex_request`
(docs/domain.md §6.2), produced by `FlexSchedule.to_covee`:

* `variable`        -> `"variables": [variable]`
* `nodes`           -> `"active_nodes": nodes`
* `flex_request["prediction k"][i]` -> `"flex_dict"[variable]["pred_k"]["node_<nodes[i]>"]`

`parse_flex_request` reads either shape (the CoVee one may carry several variables, and
`active_power_ESS` nested node first, `{"node_4": {"pred_1": p}}`, as the historic MPC
sent it) into one `FlexSchedule` per variable.

The answer on `/edgeflex/goflex/flex_result` is CoVee's shape (`covee_result`):

    {"variable": ["active_power"],
     "active_power": {"vector_position": [i, ...], "prediction": [1, ..., n],
                      "flex_value": {"pred_1": [v_i, ...], ...}},
     "active_nodes": [3, 4, 5, ...]}

`vector_position` indexes `active_nodes` (the request's node vector, carried along so
that the answer reads on its own); only traded positions appear. `parse_flex_result`
turns it back into one `FlexSchedule` per traded variable, whose
`to_message(RESPONSE_KEY)` is what `MpcVoltageController.receive_flex_response` takes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controls._common import finite, load_message, node_id, node_key
from controls.errors import InvalidMessageError

REQUEST_KEY = "flex_request"
RESPONSE_KEY = "flex_response"
VARIABLES = ("active_power", "reactive_power", "active_power_ESS")

_PREDICTION = re.compile(r"prediction (\d+)")


@dataclass(frozen=True)
class FlexSchedule:
    """Values per prediction step (outer) and node (inner), for one variable."""

    variable: str
    nodes: tuple[int, ...]
    values: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if self.variable not in VARIABLES:
            raise InvalidMessageError(f"unknown flexibility variable `{self.variable}`")
        if len(set(self.nodes)) != len(self.nodes):
            raise InvalidMessageError("flexibility nodes must be distinct")
        if any(len(row) != len(self.nodes) for row in self.values):
            raise InvalidMessageError("each prediction needs one value per node")
        if not all(math.isfinite(v) for row in self.values for v in row):
            raise InvalidMessageError("flexibility values must be finite")

    @property
    def horizon(self) -> int:
        return len(self.values)

    def value(self, step: int, node: int) -> float:
        return self.values[step][self.nodes.index(node)]

    def to_message(self, key: str = REQUEST_KEY) -> dict[str, Any]:
        """The documented shape; `key` is `flex_request` or `flex_response`."""
        predictions = {f"prediction {k + 1}": list(row) for k, row in enumerate(self.values)}
        return {"variable": self.variable, "nodes": list(self.nodes), key: predictions}

    @classmethod
    def from_message(
        cls, message: Mapping[str, Any] | str | bytes, key: str = RESPONSE_KEY
    ) -> FlexSchedule:
        """Parse the documented shape; nodes may be numbers or `node_<n>` strings."""
        message = load_message(message)
        variable, nodes, predictions = (message.get(k) for k in ("variable", "nodes", key))
        if not isinstance(variable, str) or not isinstance(nodes, list):
            raise InvalidMessageError("flexibility message needs `variable` and a `nodes` list")
        if not isinstance(predictions, Mapping) or not predictions:
            raise InvalidMessageError(f"flexibility message has no `{key}` object")
        steps = sorted(_prediction_step(k) for k in predictions)
        if steps != list(range(1, len(steps) + 1)):
            raise InvalidMessageError("predictions must be numbered 1..n without gaps")
        rows = tuple(_row(predictions[f"prediction {k}"], k) for k in steps)
        return cls(variable, tuple(_node(n) for n in nodes), rows)

    def to_covee(self) -> dict[str, Any]:
        """The historic CoVee `flex_request` payload (see the module docstring)."""
        preds = {
            f"pred_{k + 1}": {node_key(n): v for n, v in zip(self.nodes, row, strict=True)}
            for k, row in enumerate(self.values)
        }
        return {
            "variables": [self.variable],
            "flex_dict": {self.variable: preds},
            "active_nodes": list(self.nodes),
        }


def parse_flex_request(message: Mapping[str, Any] | str | bytes) -> tuple[FlexSchedule, ...]:
    """The requested flexibility, one schedule per variable, from either shape."""
    message = load_message(message)
    if REQUEST_KEY in message:
        return (FlexSchedule.from_message(message, REQUEST_KEY),)
    variables, blocks = message.get("variables"), message.get("flex_dict")
    if not isinstance(variables, list) or not variables or not isinstance(blocks, Mapping):
        raise InvalidMessageError(
            "flexibility request needs `flex_request` or CoVee's `variables` and `flex_dict`"
        )
    order = message.get("active_nodes")
    known = [_node(n) for n in order] if isinstance(order, list) else []
    return tuple(_covee_schedule(str(v), blocks.get(v), known) for v in variables)


def _covee_schedule(variable: str, block: Any, order: list[int]) -> FlexSchedule:
    if not isinstance(block, Mapping) or not block:
        raise InvalidMessageError(f"`flex_dict` has no values for `{variable}`")
    cells: dict[tuple[int, int], float] = {}
    for outer, inner in block.items():
        if not isinstance(inner, Mapping):
            raise InvalidMessageError(f"`flex_dict.{variable}.{outer}` must be an object")
        for key, value in inner.items():
            step, node = _cell(outer, key)
            cells[(step, node)] = finite(value, f"`{variable}` value", InvalidMessageError)
    steps = sorted({s for s, _ in cells})
    if steps != list(range(1, len(steps) + 1)):
        raise InvalidMessageError("predictions must be numbered 1..n without gaps")
    mentioned = {n for _, n in cells}
    nodes = [n for n in order if n in mentioned] + sorted(mentioned - set(order))
    rows = tuple(tuple(cells.get((s, n), 0.0) for n in nodes) for s in steps)
    return FlexSchedule(variable, tuple(nodes), rows)


_PRED = re.compile(r"pred_(\d+)")


def _cell(outer: Any, inner: Any) -> tuple[int, int]:
    """(step, node) of a CoVee cell: `pred_k` then `node_n`, or node first."""
    first = _PRED.fullmatch(outer) if isinstance(outer, str) else None
    if first is not None:
        return int(first.group(1)), node_id(inner)
    second = _PRED.fullmatch(inner) if isinstance(inner, str) else None
    if second is None:
        raise InvalidMessageError(f"CoVee cell `{outer}.{inner}` has no `pred_<k>` key")
    return int(second.group(1)), node_id(outer)


def covee_result(
    traded: Sequence[FlexSchedule], active_nodes: Sequence[int], variables: Sequence[str] = ()
) -> dict[str, Any]:
    """The `flex_result` payload (module docstring) for the traded schedules; a variable
    of `variables` without a traded schedule appears with no positions."""
    order = list(active_nodes)
    out: dict[str, Any] = {"variable": [], "active_nodes": order}
    by_variable = {s.variable: s for s in traded}
    for variable in dict.fromkeys([*variables, *by_variable]):
        schedule = by_variable.get(variable)
        out["variable"].append(variable)
        if schedule is None or not schedule.nodes:
            out[variable] = {"vector_position": [], "prediction": [], "flex_value": {}}
            continue
        missing = [n for n in schedule.nodes if n not in order]
        if missing:
            raise InvalidMessageError(f"node `{missing[0]}` is not in the active nodes")
        out[variable] = {
            "vector_position": [order.index(n) for n in schedule.nodes],
            "prediction": list(range(1, schedule.horizon + 1)),
            "flex_value": {f"pred_{k + 1}": list(row) for k, row in enumerate(schedule.values)},
        }
    return out


def parse_flex_result(message: Mapping[str, Any] | str | bytes) -> tuple[FlexSchedule, ...]:
    """The traded flexibility of a `flex_result` payload, one schedule per variable
    with at least one position (variables without positions traded nothing)."""
    message = load_message(message)
    variables, order = message.get("variable"), message.get("active_nodes")
    if not isinstance(variables, list) or not isinstance(order, list):
        raise InvalidMessageError("flexibility result needs `variable` and `active_nodes` lists")
    nodes = [_node(n) for n in order]
    found = []
    for variable in variables:
        block = message.get(variable)
        if not isinstance(block, Mapping):
            raise InvalidMessageError(f"flexibility result has no `{variable}` object")
        positions, values = block.get("vector_position"), block.get("flex_value")
        if not isinstance(positions, list) or not isinstance(values, Mapping):
            raise InvalidMessageError(f"`{variable}` needs `vector_position` and `flex_value`")
        if not positions:
            continue
        if any(not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < len(nodes)
               for p in positions):  # fmt: skip
            raise InvalidMessageError(f"`{variable}.vector_position` is outside `active_nodes`")
        steps = sorted(_pred_step(k) for k in values)
        if not steps or steps != list(range(1, len(steps) + 1)):
            raise InvalidMessageError("predictions must be numbered 1..n without gaps")
        rows = tuple(_row(values[f"pred_{k}"], k) for k in steps)
        found.append(FlexSchedule(str(variable), tuple(nodes[p] for p in positions), rows))
    return tuple(found)


def _pred_step(key: Any) -> int:
    match = _PRED.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise InvalidMessageError(f"prediction key `{key}` is not of the form `pred_<k>`")
    return int(match.group(1))


def _prediction_step(key: str) -> int:
    match = _PREDICTION.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise InvalidMessageError(f"prediction key `{key}` is not of the form `prediction <k>`")
    return int(match.group(1))


def _row(values: Any, step: int) -> tuple[float, ...]:
    if not isinstance(values, list):
        raise InvalidMessageError(f"`prediction {step}` must be a list")
    return tuple(finite(v, f"`prediction {step}` value", InvalidMessageError) for v in values)


def _node(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return node_id(value)
