"""The linear voltage model behind the band LP, as an operator: dense or radial.

A controller optimises on v = v_offset + A·x, where A maps its controllable
injections x (kvar or kW at given nodes) to voltage changes at chosen nodes.
`controls._bandlp` needs four things from A, and each model provides them its way:

* `apply(x)`: A·x (x may hold one column per case);
* `range(low, high)`: the lowest and highest A·x over the box low ≤ x ≤ high;
* `strength(rows)`: max |A_rj| over the given rows, per column (prices violations);
* `lp_block(rows, cols, scale)`: scale·A[rows][:, cols] as LP constraints, possibly
  through auxiliary variables bound by equalities (`LpBlock`).

`DenseOperator` holds A as a matrix: the general case of hand-made `Sensitivities`.
`controls._lindistflow` keeps a radial feeder's A implicit, as branch flows: O(n)
non-zeros where the matrix has n². `BlockOperator` repeats either over the steps of a
horizon (the MPC). `controls._lindistflow.linear_model` picks the model to work on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from controls.feeder import NodeIndex, Sensitivities


@dataclass(frozen=True)
class LpBlock:
    """scale·A[rows][:, cols]·d = g_x·d + g_w·w, where h_x·d + h_w·w = 0 and w is free."""

    g_x: sp.csr_matrix
    g_w: sp.csr_matrix
    h_x: sp.csr_matrix
    h_w: sp.csr_matrix

    @property
    def aux(self) -> int:
        """Number of auxiliary variables w."""
        columns: int = self.g_w.shape[1]
        return columns


class Operator(Protocol):
    shape: tuple[int, int]

    def apply(self, x: np.ndarray) -> np.ndarray: ...

    def range(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def strength(self, rows: np.ndarray) -> np.ndarray: ...

    def lp_block(self, rows: np.ndarray, cols: np.ndarray, scale: float) -> LpBlock: ...


class DenseOperator:
    """A held as a (sparse-stored) matrix; every voltage row is a row of A."""

    def __init__(self, a: np.ndarray | sp.spmatrix) -> None:
        self.a = sp.csr_matrix(a)
        self.shape = self.a.shape
        self._pos, self._neg = self.a.maximum(0), self.a.minimum(0)

    def apply(self, x: np.ndarray) -> npt.NDArray[np.float64]:
        v: npt.NDArray[np.float64] = self.a @ x
        return v

    def range(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._pos @ low + self._neg @ high, self._pos @ high + self._neg @ low

    def strength(self, rows: np.ndarray) -> npt.NDArray[np.float64]:
        if rows.size == 0:
            return np.zeros(self.shape[1])
        largest: npt.NDArray[np.float64] = abs(self.a[rows]).max(axis=0).toarray().ravel()
        return largest

    def lp_block(self, rows: np.ndarray, cols: np.ndarray, scale: float) -> LpBlock:
        g = self.a[rows][:, cols] * scale
        none = sp.csr_matrix((rows.size, 0))
        return LpBlock(g, none, sp.csr_matrix((0, cols.size)), sp.csr_matrix((0, 0)))


class BlockOperator:
    """The block-diagonal operator of `inner` repeated for `steps` steps.

    Variables and rows are step-major: x = [x_0, x_1, ...], v = [v_0, v_1, ...].
    `lp_block` takes rows and columns in ascending order, as `_bandlp` passes them.
    """

    def __init__(self, inner: Operator, steps: int) -> None:
        self.inner, self.steps = inner, steps
        self.shape = (inner.shape[0] * steps, inner.shape[1] * steps)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.inner.apply(self._columns(x)).T.ravel()

    def range(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lowest, highest = self.inner.range(self._columns(low), self._columns(high))
        return lowest.T.ravel(), highest.T.ravel()

    def strength(self, rows: np.ndarray) -> np.ndarray:
        parts = self._split(rows, self.inner.shape[0])
        return np.concatenate([self.inner.strength(r) for r in parts])

    def lp_block(self, rows: np.ndarray, cols: np.ndarray, scale: float) -> LpBlock:
        parts = zip(
            self._split(rows, self.inner.shape[0]), self._split(cols, self.inner.shape[1]),
            strict=True,
        )  # fmt: skip
        blocks = [self.inner.lp_block(r, c, scale) for r, c in parts]
        return LpBlock(
            *(sp.block_diag([getattr(b, name) for b in blocks], format="csr")
              for name in ("g_x", "g_w", "h_x", "h_w"))
        )  # fmt: skip

    def _columns(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(self.steps, self.inner.shape[1]).T

    def _split(self, index: np.ndarray, size: int) -> list[np.ndarray]:
        """Ascending global indices -> local indices per step."""
        bounds = np.searchsorted(index, np.arange(self.steps + 1) * size)
        return [index[bounds[k] : bounds[k + 1]] - k * size for k in range(self.steps)]


class DenseModel(NodeIndex):
    """A general (e.g. meshed or measured) sensitivity model, used as dense matrices."""

    def __init__(self, sensitivities: Sensitivities) -> None:
        self.sensitivities = sensitivities
        self.nodes, self.index = sensitivities.nodes, sensitivities.index
        self.v_nominal_v = sensitivities.v_nominal_v

    def voltages(self, p_kw: np.ndarray, q_kvar: np.ndarray, v_slack_pu: float) -> np.ndarray:
        return self.sensitivities.voltages(p_kw, q_kvar, v_slack_pu)

    def operator(
        self,
        rows: npt.NDArray[np.intp],
        cols: npt.NDArray[np.intp],
        is_p: npt.NDArray[np.bool_],
        row_scale: npt.NDArray[np.float64] | None,
    ) -> DenseOperator:
        """dV/dQ columns, or dV/dP where `is_p`, of the given rows, each row times its scale."""
        s = self.sensitivities
        a = s.dv_dq[np.ix_(rows, cols)]
        a[:, is_p] = s.dv_dp[np.ix_(rows, cols[is_p])]
        if row_scale is not None:
            a *= row_scale[:, None]
        return DenseOperator(a)
