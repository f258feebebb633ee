"""How policies read on a page: limits as an SVG chart, conditions as text, diffs
side by side, audit details with secrets masked.

The SVG is drawn here, on the server, from numbers only (every value is
formatted as a number, never copied from the document as text), and uses
presentation attributes rather than inline styles, so the page's
Content-Security-Policy needs no `unsafe-inline`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from pbgm.policy import canonical_json

SECRET_KEY = re.compile(r"secret|password|passwd|token|hash|credential|api_?key", re.IGNORECASE)
MASK = "***"


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# --- the operational-limits chart -------------------------------------------------------


def voltage_band_svg(voltage: Mapping[str, Any]) -> Markup:
    """The voltage band (and control targets) on a 0.85-1.15 pu scale."""
    low, high = _number(voltage.get("v_min_pu")), _number(voltage.get("v_max_pu"))
    if low is None or high is None:
        return Markup("")
    scale_low, scale_high, width = 0.85, 1.15, 400

    def x(pu: float) -> float:
        clamped = min(max(pu, scale_low), scale_high)
        return 20 + (clamped - scale_low) / (scale_high - scale_low) * (width - 40)

    parts = [
        f'<rect x="20" y="30" width="{width - 40}" height="24" fill="#eeeeee" stroke="#555555"/>',
        f'<rect x="{x(low):.1f}" y="30" width="{x(high) - x(low):.1f}" height="24" '
        'fill="#9ecae1" stroke="#08519c"/>',
    ]
    for key, colour in (
        ("v_target_min_pu", "#006d2c"),
        ("v_target_max_pu", "#006d2c"),
        ("v_ref_pu", "#000000"),
    ):
        value = _number(voltage.get(key))
        if value is not None:
            parts.append(
                f'<line x1="{x(value):.1f}" y1="26" x2="{x(value):.1f}" y2="58" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
    for tick in (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15):
        parts.append(
            f'<text x="{x(tick):.1f}" y="74" font-size="11" text-anchor="middle" '
            f'fill="#222222">{tick:.2f}</text>'
        )
    parts.append(
        '<text x="20" y="18" font-size="12" fill="#222222">'
        f"band {_fmt(low)} to {_fmt(high)} pu</text>"
    )
    title = f"voltage band from {_fmt(low)} to {_fmt(high)} per unit"
    return _svg(width, 84, title, parts)


def pq_svg(power: Mapping[str, Any]) -> Markup:
    """The P/Q operating rectangle (and the apparent-power circle when given)."""
    p_min, p_max = _number(power.get("p_min_kw")), _number(power.get("p_max_kw"))
    q_min, q_max = _number(power.get("q_min_kvar")), _number(power.get("q_max_kvar"))
    s_max = _number(power.get("s_max_kva"))
    if p_min is None or p_max is None:
        return Markup("")
    q_min = q_min if q_min is not None else 0.0
    q_max = q_max if q_max is not None else 0.0
    extent = max(abs(p_min), abs(p_max), abs(q_min), abs(q_max), s_max or 0.0, 1.0) * 1.15
    size, half = 240, 120

    def px(value: float) -> float:
        return half + value / extent * (half - 10)

    def qy(value: float) -> float:
        return half - value / extent * (half - 10)

    parts = [
        f'<line x1="10" y1="{half}" x2="{size - 10}" y2="{half}" stroke="#555555"/>',
        f'<line x1="{half}" y1="10" x2="{half}" y2="{size - 10}" stroke="#555555"/>',
        f'<text x="{size - 12}" y="{half - 4}" font-size="11" text-anchor="end" '
        'fill="#222222">P kW</text>',
        f'<text x="{half + 4}" y="20" font-size="11" fill="#222222">Q kvar</text>',
    ]
    if s_max:
        radius = s_max / extent * (half - 10)
        parts.append(
            f'<circle cx="{half}" cy="{half}" r="{radius:.1f}" fill="none" '
            'stroke="#888888" stroke-dasharray="4 3"/>'
        )
    parts.append(
        f'<rect x="{px(p_min):.1f}" y="{qy(q_max):.1f}" width="{px(p_max) - px(p_min):.1f}" '
        f'height="{max(qy(q_min) - qy(q_max), 1):.1f}" fill="#9ecae1" fill-opacity="0.7" '
        'stroke="#08519c"/>'
    )
    title = f"P from {_fmt(p_min)} to {_fmt(p_max)} kW, Q from {_fmt(q_min)} to {_fmt(q_max)} kvar"
    return _svg(size, size, title, parts)


def _svg(width: int, height: int, title: str, parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(  # noqa: S704  (numbers formatted here and an escaped title, no document text)
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


# --- rules and conditions in readable form -----------------------------------------------


def expression_text(expr: Any) -> str:
    """`at-least-one-member-of(subject.groups, ["operators"])` for a condition tree."""
    if isinstance(expr, Mapping):
        if "apply" in expr:
            args = expr.get("args", [])
            inner = ", ".join(expression_text(a) for a in args) if isinstance(args, list) else ""
            return f"{expr['apply']}({inner})"
        if "attr" in expr:
            return str(expr["attr"])
        if "value" in expr:
            return json.dumps(expr["value"], ensure_ascii=False)
    return json.dumps(expr, ensure_ascii=False)


def target_text(target: Any) -> list[str]:
    """One line per matched attribute: `action.id = write`, `resource.asset_id in [...]`."""
    if not isinstance(target, Mapping) or not target:
        return ["every request"]
    lines = []
    for category, attributes in target.items():
        if not isinstance(attributes, Mapping):
            lines.append(f"{category}: {json.dumps(attributes, ensure_ascii=False)}")
            continue
        for name, value in attributes.items():
            if isinstance(value, list):
                lines.append(f"{category}.{name} in {json.dumps(value, ensure_ascii=False)}")
            else:
                lines.append(f"{category}.{name} = {json.dumps(value, ensure_ascii=False)}")
    return lines


# --- side-by-side diff -------------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    kind: str  # equal | replace | delete | insert
    left_number: int | None
    left: str
    right_number: int | None
    right: str


def side_by_side(old: Any, new: Any, *, context: int = 3) -> list[DiffRow]:
    """The canonical JSON of two documents, aligned line by line: the changes with
    `context` lines around them, a `gap` row where unchanged lines are left out."""
    left = canonical_json(old).splitlines()
    right = canonical_json(new).splitlines()
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    groups: list[list[tuple[str, int, int, int, int]]]
    if left == right:  # nothing changed: show the document whole
        groups = [list(matcher.get_opcodes())]
    else:
        groups = list(matcher.get_grouped_opcodes(context))
    for number, group in enumerate(groups):
        if number or group[0][1] > 0:
            rows.append(DiffRow("gap", None, "…", None, "…"))
        for tag, i1, i2, j1, j2 in group:
            for k in range(max(i2 - i1, j2 - j1)):
                li, rj = i1 + k, j1 + k
                rows.append(
                    DiffRow(
                        tag,
                        li + 1 if li < i2 else None,
                        left[li] if li < i2 else "",
                        rj + 1 if rj < j2 else None,
                        right[rj] if rj < j2 else "",
                    )
                )
    if groups and groups[-1][-1][2] < len(left):
        rows.append(DiffRow("gap", None, "…", None, "…"))
    return rows


# --- audit details -----------------------------------------------------------------------


def masked(value: Any) -> Any:
    """A copy with the value of every secret-looking key replaced by `***`."""
    if isinstance(value, Mapping):
        return {k: MASK if SECRET_KEY.search(str(k)) else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value
