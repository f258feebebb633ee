"""Linear voltage sensitivities of a radial feeder (LinDistFlow).

For a radial feeder fed from a slack node, the voltage magnitude at node i moves,
to first order, with the active and reactive power injected at every node j:

    ΔV_i [pu] ≈ Σ_j (R_ij · P_j + X_ij · Q_j) / V_nominal²

where R_ij (X_ij) is the resistance (reactance) of the part of the path from the
slack to i that is shared with the path to j, P_j and Q_j are three-phase injections
(generation positive) and V_nominal is the line-to-line base voltage. This is the
model the voltage and MPC controllers optimise on; `controls.testing.power_flow`
is a full (non-linear) power flow to check it against.

The matrices are dense (n x n). A controller given the `RadialFeeder` itself, or
sensitivities it built (they remember it), optimises on the same model written as
branch flows instead (`controls._lindistflow`): O(n) non-zeros, the same results.

Units: powers in kW / kvar, impedances in ohm, voltages in pu of `v_nominal_v`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from controls.errors import InvalidMeasurementError, InvalidTopologyError


@dataclass(frozen=True)
class Line:
    """A feeder section from `parent` (nearer the slack) to `child`."""

    parent: int
    child: int
    r_ohm: float
    x_ohm: float


class NodeIndex:
    """Positions of node ids in `nodes`, shared by the feeder models."""

    nodes: tuple[int, ...]
    index: Mapping[int, int]

    def positions(self, nodes: Iterable[int]) -> npt.NDArray[np.intp]:
        """Row/column positions of `nodes`; an unknown node is an error."""
        try:
            return np.array([self.index[n] for n in nodes], dtype=int)
        except KeyError as exc:
            raise InvalidMeasurementError(f"node `{exc.args[0]}` is not in the feeder") from None

    def vector(self, values: Mapping[int, float]) -> npt.NDArray[np.float64]:
        """A dense vector over `nodes` from a sparse `{node: value}` mapping."""
        out = np.zeros(len(self.nodes))
        if values:
            out[self.positions(values.keys())] = list(values.values())
        return out


@dataclass(frozen=True)
class Sensitivities(NodeIndex):
    """dV/dP and dV/dQ in pu per kW / kvar; rows and columns follow `nodes`.

    `feeder` is the radial feeder they were computed from, if any: controllers
    then use its sparse branch-flow form. Sensitivities built by hand (a meshed
    grid, measured sensitivities) have none and are used as dense matrices.
    """

    nodes: tuple[int, ...]
    dv_dp: npt.NDArray[np.float64]
    dv_dq: npt.NDArray[np.float64]
    v_nominal_v: float
    index: Mapping[int, int] = field(init=False, repr=False, compare=False)
    feeder: RadialFeeder | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.nodes)})

    def voltages(
        self,
        p_kw: npt.NDArray[np.float64],
        q_kvar: npt.NDArray[np.float64],
        v_slack_pu: float = 1.0,
    ) -> npt.NDArray[np.float64]:
        """Linearised node voltages for injections given as dense vectors over `nodes`."""
        return v_slack_pu + self.dv_dp @ p_kw + self.dv_dq @ q_kvar


@dataclass(frozen=True)
class RadialFeeder:
    """A radial feeder: lines from the slack node outwards, and the voltage base."""

    lines: tuple[Line, ...]
    v_nominal_v: float
    slack: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        if not self.v_nominal_v > 0:
            raise InvalidTopologyError(
                f"nominal voltage must be positive, got `{self.v_nominal_v}`"
            )
        _check_radial(self.lines, self.slack)

    @property
    def nodes(self) -> tuple[int, ...]:
        """Non-slack nodes in the order the lines list them (parents before children)."""
        return tuple(line.child for line in breadth_first(self.lines, self.slack))

    def parents(self) -> dict[int, Line]:
        return {line.child: line for line in self.lines}

    def sensitivities(self) -> Sensitivities:
        """dV/dP and dV/dQ of every non-slack node (see the module docstring)."""
        ordered = breadth_first(self.lines, self.slack)
        path = _path_matrix(ordered)
        r = np.array([line.r_ohm for line in ordered])
        x = np.array([line.x_ohm for line in ordered])
        scale = 1e3 / self.v_nominal_v**2
        dv_dp = (path * (r * scale)) @ path.T
        dv_dq = (path * (x * scale)) @ path.T
        nodes = tuple(ln.child for ln in ordered)
        return Sensitivities(nodes, dv_dp, dv_dq, self.v_nominal_v, feeder=self)


def chain_feeder(
    n: int, *, r_ohm: float, x_ohm: float, v_nominal_v: float = 400.0, branch_every: int = 0
) -> RadialFeeder:
    """A feeder of `n` sections of equal impedance; nodes 1..n.

    With `branch_every = k > 0`, every k-th node starts a lateral: node i hangs
    from node i - k instead of i - 1 when i is a multiple of k (a simple way to
    make trees of any size for tests and benchmarks).
    """
    lines = []
    for child in range(1, n + 1):
        parent = child - 1
        if branch_every and child % branch_every == 0 and child > branch_every:
            parent = child - branch_every
        lines.append(Line(parent, child, r_ohm, x_ohm))
    return RadialFeeder(tuple(lines), v_nominal_v)


def _check_radial(lines: Sequence[Line], slack: int) -> None:
    children = [line.child for line in lines]
    if len(set(children)) != len(children):
        raise InvalidTopologyError("a node has more than one parent line: the feeder is not radial")
    if slack in children:
        raise InvalidTopologyError(f"the slack node `{slack}` cannot be fed by a line")
    for line in lines:
        if not (line.r_ohm >= 0 and line.x_ohm >= 0) or line.r_ohm + line.x_ohm == 0:
            raise InvalidTopologyError(f"line to node `{line.child}` needs r, x >= 0, not both 0")
    if len(breadth_first(lines, slack)) != len(lines):
        raise InvalidTopologyError(f"some nodes are not connected to the slack node `{slack}`")


def breadth_first(lines: Sequence[Line], slack: int) -> list[Line]:
    """Lines in breadth-first order from the slack (only those connected to it)."""
    by_parent: dict[int, list[Line]] = {}
    for line in lines:
        by_parent.setdefault(line.parent, []).append(line)
    ordered, frontier = [], [slack]
    while frontier:
        nxt = []
        for node in frontier:
            for line in by_parent.get(node, ()):
                ordered.append(line)
                nxt.append(line.child)
        frontier = nxt
    return ordered


def _path_matrix(ordered: Sequence[Line]) -> np.ndarray:
    """path[i, l] = 1 when line l lies on the path from the slack to node i."""
    pos = {line.child: i for i, line in enumerate(ordered)}
    path = np.zeros((len(ordered), len(ordered)))
    for i, line in enumerate(ordered):
        parent_row = pos.get(line.parent)
        if parent_row is not None:
            path[i] = path[parent_row]
        path[i, i] = 1.0
    return path
