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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
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
