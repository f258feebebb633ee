"""The optimisation shared by the voltage and MPC controllers.

Problem, on a linear voltage model v(x) = v_offset + A·x (A an operator of
`controls._linear`: a dense matrix, or a radial feeder's branch flows):

    minimise   Σ_j cost_j · |x_j - reference_j|  +  big · Σ_i (s_lo_i + s_hi_i)
    subject to v_min_i - s_lo_i ≤ v_i(x) ≤ v_max_i + s_hi_i,   s ≥ 0
               lower_j ≤ x_j ≤ upper_j                        (asset limits: hard)
               E·x ≤ e                                        (e.g. storage energy: hard)

The slacks keep it feasible when local means cannot restore the band; a positive
slack is reported as the remaining violation. It is a linear programme (HiGHS via
`scipy.optimize.linprog`): the absolute values are split into up/down parts.

Two devices keep it small and ordered:

* priority tiers: variables of tier 0 are tried alone (the others held at their
  reference); the next tier is released only if the band is still violated. This
  is how reactive power is preferred to storage and to curtailment. A tier that
  cannot succeed even with every variable at its most helpful bound is skipped
  without solving;
* lazy voltage rows: only rows that are violated enter the LP; after each solve,
  rows the solution violates are added and the LP is solved again. The result is
  the same as with all rows, at a fraction of the size on large feeders.

Ties are common: PVs below the one binding node all lower it alike, and cost
alike. The prices are therefore raised by tiny, distinct amounts that depend on
the variable's position only (`_TIE_BREAK`, `_spread`), so that the optimum is
unique: among equally good means, a fixed one is used. The plan no longer
depends on the solver's path, so the dense and the branch-flow forms of a feeder
give the same set-points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import linprog

from controls._linear import LpBlock, Operator
from controls.errors import SolverError

_SCALE = 1e3  # voltage rows in milli-pu: keeps coefficients near 1
_TOL = 1e-6  # pu: a violation below this counts as none
_TIE_BREAK = 1e-6  # relative price spread that makes the optimum unique
_SEED = 20240611  # fixes the spread: the same problem always gets the same prices


@dataclass(frozen=True)
class BandProblem:
    v_offset: npt.NDArray[np.float64]
    a: Operator
    v_min: npt.NDArray[np.float64]
    v_max: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    reference: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]
    tier: npt.NDArray[np.int_]
    e: sp.csr_matrix | None = None
    e_rhs: npt.NDArray[np.float64] | None = None


@dataclass(frozen=True)
class BandSolution:
    x: npt.NDArray[np.float64]
    v: npt.NDArray[np.float64]
    max_violation_pu: float
    tier: int

    @property
    def feasible(self) -> bool:
        return self.max_violation_pu <= _TOL


def solve(problem: BandProblem, first_tier: int = 0) -> BandSolution:
    """Least-cost x within its bounds bringing v(x) into the band, tier by tier.

    Tiers below `first_tier` are released together with it (for callers that
    already know the lower tiers alone cannot restore the band).
    """
    reference = np.clip(problem.reference, problem.lower, problem.upper)
    solution = evaluate(problem, reference, tier=-1)
    if solution.feasible:
        return solution
    last = int(problem.tier.max(initial=-1))
    for tier in range(first_tier, last + 1):
        free = np.flatnonzero(problem.tier <= tier)
        if tier < last and not _reachable(problem, reference, free):
            continue
        x = _solve_lazy(problem, reference, free)
        solution = evaluate(problem, x, tier)
        if solution.feasible:
            break
    return solution


def evaluate(problem: BandProblem, x: npt.NDArray[np.float64], tier: int) -> BandSolution:
    v = problem.v_offset + problem.a.apply(x)
    violation = np.maximum(problem.v_min - v, v - problem.v_max)
    worst = float(violation.max(initial=0.0))
    return BandSolution(x, v, max(worst, 0.0), tier)


def _reachable(
    problem: BandProblem, reference: npt.NDArray[np.float64], free: npt.NDArray[np.intp]
) -> bool:
    """A necessary condition for restoring the band with the free variables.

    Each row's voltage can move at most as far as every free variable pushing it
    the right way at once allows; if even that leaves a row outside the band, the
    tier cannot succeed and its LP need not be solved.
    """
    low = np.zeros_like(reference)
    high = np.zeros_like(reference)
    low[free] = problem.lower[free] - reference[free]
    high[free] = problem.upper[free] - reference[free]
    v = problem.v_offset + problem.a.apply(reference)
    lowest, highest = problem.a.range(low, high)
    lowest, highest = v + lowest, v + highest
    return bool(np.all(lowest <= problem.v_max + _TOL) and np.all(highest >= problem.v_min - _TOL))


def _solve_lazy(
    problem: BandProblem, reference: npt.NDArray[np.float64], free: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    v_ref = problem.v_offset + problem.a.apply(reference)
    rows = _violated(problem, v_ref, np.zeros(v_ref.size, dtype=bool))
    x = reference
    for _ in range(50):
        x = _solve_rows(problem, reference, free, np.flatnonzero(rows))
        v = problem.v_offset + problem.a.apply(x)
        added = _violated(problem, v, rows)
        if not added.any():
            return x
        rows |= added
    return _solve_rows(problem, reference, free, np.arange(v_ref.size))


def _violated(
    problem: BandProblem, v: npt.NDArray[np.float64], already: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    out = (v < problem.v_min - _TOL / 10) | (v > problem.v_max + _TOL / 10)
    return out & ~already


def _solve_rows(
    problem: BandProblem,
    reference: npt.NDArray[np.float64],
    free: npt.NDArray[np.intp],
    rows: npt.NDArray[np.intp],
) -> npt.NDArray[np.float64]:
    """One LP over the given voltage rows; frozen variables stay at their reference.

    Variables: [up, down, s_lo, s_hi, w], x = reference + up - down on the free
    variables, w the operator's auxiliary variables (none for a dense matrix).
    """
    nf, nr = free.size, rows.size
    block = problem.a.lp_block(rows, free, _SCALE)
    a_ub, b_ub = _inequalities(problem, block, reference, free, rows)
    cost = problem.cost[free]
    big = _penalty(problem.a.strength(rows)[free] * _SCALE, cost) if nr else 1.0
    cost = cost * (1.0 + _TIE_BREAK * _spread(free, problem.cost.size))
    c = np.concatenate([cost, cost, np.full(2 * nr, big), np.zeros(block.aux)])
    up = problem.upper[free] - reference[free]
    down = reference[free] - problem.lower[free]
    low = np.concatenate([np.zeros(2 * nf + 2 * nr), np.full(block.aux, -np.inf)])
    high = np.concatenate([up, down, np.full(2 * nr + block.aux, np.inf)])
    result = linprog(
        c, A_ub=a_ub, b_ub=b_ub, **_equalities(block, nr), bounds=np.column_stack([low, high]),
        method="highs",
    )  # fmt: skip
    if result.status != 0:
        raise SolverError(f"voltage optimisation failed: {result.message.lower()}")
    x = reference.copy()
    x[free] += result.x[:nf] - result.x[nf : 2 * nf]
    return np.clip(x, problem.lower, problem.upper)


def _inequalities(
    problem: BandProblem, block: LpBlock, reference: npt.NDArray[np.float64],
    free: npt.NDArray[np.intp], rows: npt.NDArray[np.intp],
) -> tuple[sp.csr_matrix, npt.NDArray[np.float64]]:  # fmt: skip
    """v_min - s_lo ≤ v ≤ v_max + s_hi on the rows (milli-pu), then the hard E·x ≤ e."""
    nr = rows.size
    v_ref = (problem.v_offset + problem.a.apply(reference))[rows] * _SCALE
    g, gw = block.g_x, block.g_w
    eye, zero = sp.identity(nr, format="csr"), sp.csr_matrix((nr, nr))
    blocks = [[g, -g, zero, -eye, gw], [-g, g, -eye, zero, -gw]]
    rhs = [problem.v_max[rows] * _SCALE - v_ref, v_ref - problem.v_min[rows] * _SCALE]
    if problem.e is not None:
        e = problem.e[:, free]
        blocks.append([e, -e, sp.csr_matrix((e.shape[0], 2 * nr + block.aux))])
        rhs.append(problem.e_rhs - problem.e @ reference)
    return sp.vstack([sp.hstack(b) for b in blocks], format="csr"), np.concatenate(rhs)


def _equalities(block: LpBlock, nr: int) -> dict[str, sp.csr_matrix | npt.NDArray[np.float64]]:
    """The operator's equalities h_x·(up - down) + h_w·w = 0, if it has any."""
    h, hw = block.h_x, block.h_w
    if h.shape[0] == 0:
        return {}
    gap = sp.csr_matrix((h.shape[0], 2 * nr))
    return {"A_eq": sp.hstack([h, -h, gap, hw], format="csr"), "b_eq": np.zeros(h.shape[0])}


def _spread(index: npt.NDArray[np.intp], size: int) -> npt.NDArray[np.float64]:
    """Fixed pseudo-random numbers in [0, 1), one per variable position.

    Not a regular sequence: a linear (or golden-ratio) spread leaves ties along
    directions such as (-1, 2, -1) on evenly spaced nodes, which regular feeders have.
    """
    return np.random.default_rng(_SEED).random(size)[index]


def _penalty(strength: npt.NDArray[np.float64], cost: npt.NDArray[np.float64]) -> float:
    """A violation price high enough that any useful variable is always worth using."""
    useful = strength > 0
    if not useful.any():
        return 1.0
    return 1e3 * float((cost[useful] / strength[useful]).max()) + 1.0
