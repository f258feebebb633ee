"""A radial feeder's linear voltage model in branch-flow form (LinDistFlow): O(n) non-zeros.

For the line l into node k, with P_l, Q_l the power flowing from k towards the
slack (the injections of k's subtree) and u the voltage change (pu) they cause:

    P_l = p_k + Σ P_c over the lines c leaving k          (the same for Q)
    u_k = u_parent + (r_l·P_l + x_l·Q_l) · 1e3 / V_nominal²,   u_slack = 0

In matrix form, with M = I - C (C[l, c] = 1 when line c leaves line l's child;
upper triangular in breadth-first order): F = M⁻¹·p and u = M⁻ᵀ·(r∘F_p + x∘F_q).
This is exactly the dense model of `controls.feeder`, whose matrices are
M⁻ᵀ·diag(r)·M⁻¹, evaluated by two sparse triangular solves instead of n² products.
The LP gets F_p, F_q and u as free auxiliary variables tied by these 3n
equalities (about 7n non-zeros) instead of a dense row per constrained voltage.

Both sensitivity matrices are non-negative (r, x ≥ 0) and the row scales are
positive (1 / measured voltage), so A ≥ 0: the extremes of A·x over a box are A
at its corners (`range`), and the largest entry of a column is found on the tree
(`strength`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from controls._linear import DenseModel, LpBlock
from controls.errors import InvalidTopologyError
from controls.feeder import NodeIndex, RadialFeeder, Sensitivities, breadth_first


class RadialModel(NodeIndex):
    """A radial feeder prepared for sweeps: the triangular factor M and the path impedances."""

    def __init__(self, feeder: RadialFeeder) -> None:
        ordered = breadth_first(feeder.lines, feeder.slack)
        self.feeder, self.v_nominal_v = feeder, feeder.v_nominal_v
        self.nodes = tuple(line.child for line in ordered)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.parent = [self.index.get(line.parent, -1) for line in ordered]
        scale = 1e3 / feeder.v_nominal_v**2
        self.r_ohm = np.array([line.r_ohm for line in ordered], dtype=float)
        self.x_ohm = np.array([line.x_ohm for line in ordered], dtype=float)
        self.r = scale * self.r_ohm
        self.x = scale * self.x_ohm
        n, parent = len(ordered), np.array(self.parent, dtype=int)
        below = np.flatnonzero(parent >= 0)  # lines that hang from another line
        c = sp.csc_matrix((np.ones(below.size), (parent[below], below)), shape=(n, n))
        self.m = (sp.identity(n, format="csc") - c).tocsc()
        self._lu = splu(self.m, permc_spec="NATURAL", diag_pivot_thresh=0.0) if n else None
        self.r_path = self.down(self.r)  # dV_k/dP_k: resistance from the slack to k
        self.x_path = self.down(self.x)

    def up(self, injection: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Branch flows: each line carries the injections of its subtree (M⁻¹·p)."""
        return injection.copy() if self._lu is None else self._lu.solve(injection)

    def down(self, drop: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Node values: the sum of line values along the path from the slack (M⁻ᵀ·z)."""
        return drop.copy() if self._lu is None else self._lu.solve(drop, trans="T")

    def delta(
        self, p_kw: npt.NDArray[np.float64], q_kvar: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Voltage changes (pu) of the injections; columns of 2-d arrays are separate cases."""
        r, x = (self.r, self.x) if p_kw.ndim == 1 else (self.r[:, None], self.x[:, None])
        return self.down(r * self.up(p_kw) + x * self.up(q_kvar))

    def voltages(self, p_kw: np.ndarray, q_kvar: np.ndarray, v_slack_pu: float) -> np.ndarray:
        return v_slack_pu + self.delta(p_kw, q_kvar)

    def subtree_max(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The largest value in each node's subtree (itself included)."""
        out = values.tolist()
        for node in range(len(out) - 1, -1, -1):
            parent = self.parent[node]
            if parent >= 0 and out[node] > out[parent]:
                out[parent] = out[node]
        return np.array(out, dtype=float)

    def ancestor_max(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The largest value on each node's path from the slack (itself included)."""
        out = values.tolist()
        for node, parent in enumerate(self.parent):
            if parent >= 0 and out[parent] > out[node]:
                out[node] = out[parent]
        return np.array(out, dtype=float)

    def operator(
        self,
        rows: npt.NDArray[np.intp],
        cols: npt.NDArray[np.intp],
        is_p: npt.NDArray[np.bool_],
        row_scale: npt.NDArray[np.float64] | None,
    ) -> RadialOperator:
        """Voltage changes at `rows` (times `row_scale`) per kvar, or kW where `is_p`, at `cols`."""
        return RadialOperator(self, rows, cols, is_p, row_scale)


class RadialOperator:
    """A = diag(row_scale)·(dV/dQ or dV/dP)[rows][:, cols], never formed.

    The row scales must be positive (they are 1 / measured voltage, or 1).
    """

    def __init__(
        self, model: RadialModel, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp],
        is_p: npt.NDArray[np.bool_], row_scale: npt.NDArray[np.float64] | None,
    ) -> None:  # fmt: skip
        self.model, self.rows, self.cols, self.is_p = model, rows, cols, is_p
        self.row_scale: npt.NDArray[np.float64] = (
            np.ones(rows.size) if row_scale is None else row_scale
        )
        self.shape = (rows.size, cols.size)
        self.inject_p, self.inject_q = self._injection(is_p), self._injection(~is_p)

    def _injection(self, which: np.ndarray) -> sp.csr_matrix:
        """Node injections (n x columns) of the variables that are of one kind."""
        j = np.flatnonzero(which)
        shape = (len(self.model.nodes), self.cols.size)
        return sp.csr_matrix((np.ones(j.size), (self.cols[j], j)), shape=shape)

    def apply(self, x: np.ndarray) -> npt.NDArray[np.float64]:
        u = self.model.delta(self.inject_p @ x, self.inject_q @ x)[self.rows]
        return u * (self.row_scale if x.ndim == 1 else self.row_scale[:, None])

    def range(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.apply(low), self.apply(high)  # A ≥ 0

    def strength(self, rows: np.ndarray) -> npt.NDArray[np.float64]:
        """max_r A[r, j] over the given rows, per column, in O(n).

        A row at node i and a column at node k share the path from the slack to
        their meeting point a, so A = w_i·R(a) with R the path resistance (or
        reactance). Over the rows, the maximum is the largest R(a)·(largest w in
        a's subtree) among k's ancestors a: for each row, its own meeting point
        gives its entry, and any higher ancestor gives less (R grows downwards).
        """
        model = self.model
        weight = np.zeros(len(model.nodes))
        np.maximum.at(weight, self.rows[rows], self.row_scale[rows])
        below = model.subtree_max(weight)
        p = model.ancestor_max(model.r_path * below)[self.cols]
        q = model.ancestor_max(model.x_path * below)[self.cols]
        return np.where(self.is_p, p, q)

    def lp_block(self, rows: np.ndarray, cols: np.ndarray, scale: float) -> LpBlock:
        """Rows row_scale·u (u in pu·scale) over w = [F_p, F_q, u], tied by the 3n equalities."""
        model, n = self.model, len(self.model.nodes)
        m = model.m
        h_w = sp.bmat(
            [[m, None, None], [None, m, None],
             [sp.diags(-scale * model.r), sp.diags(-scale * model.x), m.T]],
            format="csr",
        )  # fmt: skip
        h_x = sp.vstack(
            [-self.inject_p[:, cols], -self.inject_q[:, cols], sp.csr_matrix((n, cols.size))],
            format="csr",
        )
        at = (np.arange(rows.size), 2 * n + self.rows[rows])
        g_w = sp.csr_matrix((self.row_scale[rows], at), shape=(rows.size, 3 * n))
        return LpBlock(sp.csr_matrix((rows.size, cols.size)), g_w, h_x, h_w)


def linear_model(model: Sensitivities | RadialFeeder) -> DenseModel | RadialModel:
    """The branch-flow form whenever the radial feeder is known, else the dense matrices."""
    if isinstance(model, RadialFeeder):
        return RadialModel(model)
    if isinstance(model, Sensitivities):
        return DenseModel(model) if model.feeder is None else RadialModel(model.feeder)
    raise InvalidTopologyError("the feeder model must be a radial feeder or its sensitivities")
