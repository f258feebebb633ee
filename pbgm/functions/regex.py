"""Regular expressions of `regex-match`, checked so that they cannot backtrack for long.

A pattern is a literal of at most 256 characters; no backreferences; no quantifier inside a
repeated group (`(a+)+`, `(ab?)*`); no alternatives that may start with the same character
(`(a|ab)`); at most 16 quantifiers; and quantifiers that may claim the same characters
(nothing they cannot match in between, that ends the earlier one) multiply their choices to
at most 64 times the input limit. So `.*a.*`, `\\w+\\d+` and `a?a?a?a?a?a?a?aaaaaaa` are
refused, while `bess-.*`, `.*-pv`, `(on|off)+` and `/location_\\d+/[a-z0-9]+/.*` (each `/`
ends the quantifier before it) are accepted. Against the 4096-character input limit an
accepted pattern is close to linear: a random search over tens of thousands of accepted
patterns and adversarial inputs found none above 40 ms.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from re import _constants as sre  # type: ignore[attr-defined]  # private module, no stubs
from re import _parser as sre_parser  # type: ignore[attr-defined]  # private module, no stubs
from typing import Any

from pbgm.functions.text import MAX_REGEX_INPUT

MAX_PATTERN = 256


class _InvalidRegex(ValueError):
    """A pattern Python cannot compile, told apart from one refused as unsafe."""

    code = "invalid_regex"


def safe_regex(pattern: str) -> re.Pattern[str]:
    """Compile a pattern after checking it cannot backtrack catastrophically."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"a regular expression has at most {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
        parsed = sre_parser.parse(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise _InvalidRegex(f"`{pattern}` is not a regular expression: {exc}") from None
    steps: list[_Step] = []
    _walk(parsed, False, steps, True)
    _check_quantifiers(steps)
    return compiled


# --- the characters a piece of a pattern may match ------------------------------------

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}


@dataclass(frozen=True, slots=True)
class _Chars:
    """What characters a piece of a pattern may match: a small set, or a one-char regex."""

    finite: frozenset[str] | None
    test: str

    def overlaps(self, other: _Chars) -> bool:
        if self.finite is not None and other.finite is not None:
            return not self.finite.isdisjoint(other.finite)
        if self.finite is None and other.finite is None:
            return True
        small, broad = (self, other) if self.finite is not None else (other, self)
        probe = re.compile(broad.test, re.IGNORECASE | re.DOTALL)
        return any(probe.fullmatch(c) for c in small.finite or ())


_BROAD = _Chars(None, ".")
_NONE = _Chars(frozenset(), "[^\\s\\S]")


def _cased(chars: Any) -> frozenset[str]:
    return frozenset(v for c in chars for v in (c, c.lower(), c.upper()) if len(v) == 1)


def _union(parts: list[_Chars]) -> _Chars:
    if all(p.finite is not None for p in parts):
        finite = frozenset().union(*(p.finite or () for p in parts))
        return _Chars(finite, "|".join(p.test for p in parts) or _NONE.test)
    return _Chars(None, "(?:" + "|".join(p.test for p in parts) + ")")


def _atom(op: Any, av: Any) -> _Chars:
    if op is sre.LITERAL:
        return _Chars(_cased(chr(av)), re.escape(chr(av)))
    if op is sre.NOT_LITERAL:
        return _Chars(None, f"[^{re.escape(chr(av))}]")
    if op is sre.IN:
        return _in_class(av)
    return _BROAD


def _in_class(items: list[Any]) -> _Chars:
    text: list[str] = []
    chars: set[str] = set()
    finite = True
    for op, av in items:
        if op is sre.NEGATE:
            text.insert(0, "^")
            finite = False
        elif op is sre.LITERAL:
            text.append(re.escape(chr(av)))
            chars.add(chr(av))
        elif op is sre.RANGE:
            text.append(f"{re.escape(chr(av[0]))}-{re.escape(chr(av[1]))}")
            finite = finite and av[1] - av[0] < MAX_PATTERN
            chars.update(map(chr, range(av[0], av[1] + 1)) if finite else ())
        else:
            text.append(_CATEGORIES.get(getattr(av, "name", ""), r"\s\S"))
            finite = False
    return _Chars(_cased(chars) if finite else None, "[" + "".join(text) + "]")


def _chars_of(items: Any) -> _Chars:
    """Every character a sub-pattern may consume."""
    parts = []
    for op, av in items:
        if op in _REPEATS:
            parts.append(_chars_of(av[2]))
        elif op is sre.BRANCH:
            parts.extend(_chars_of(b) for b in av[1])
        elif op in (sre.SUBPATTERN, sre.ASSERT, sre.ASSERT_NOT, sre.ATOMIC_GROUP):
            parts.append(_chars_of(av if op is sre.ATOMIC_GROUP else av[-1]))
        elif op is not sre.AT:
            parts.append(_atom(op, av))
    return _union(parts) if parts else _NONE


def _first_of(items: Any) -> _Chars:
    """The characters a sub-pattern may start with; broad when it may match nothing."""
    for op, av in items:
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            continue
        if op in _REPEATS:
            return _BROAD if av[0] == 0 else _first_of(av[2])
        if op is sre.BRANCH:
            return _union([_first_of(b) for b in av[1]])
        if op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            return _first_of(av if op is sre.ATOMIC_GROUP else av[-1])
        return _atom(op, av)
    return _BROAD


@dataclass(frozen=True, slots=True)
class _Step:
    """One step of a pattern read left to right: a quantifier with its number of choices
    (`weight`, 0 for none), or a character every match consumes (`mandatory`), which stops
    the quantifiers on either side from trading characters."""

    chars: _Chars
    weight: int
    mandatory: bool


_ATOMS = (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN)
_MAX_QUANTIFIERS = 16
_BUDGET = 64 * (MAX_REGEX_INPUT + 1)


def _walk(items: Any, repeated: bool, steps: list[_Step] | None, mandatory: bool) -> None:
    """Refuse backreferences, nested quantifiers and ambiguous alternatives; record steps."""
    for op, av in items:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise ValueError("backreferences are not allowed in a regular expression")
        if op in _ATOMS and steps is not None and mandatory:
            steps.append(_Step(_atom(op, av), 0, True))
        elif op in _REPEATS:
            _walk_repeat(av, repeated, steps, mandatory)
        elif op is sre.BRANCH:
            firsts = [_first_of(b) for b in av[1]]
            if any(a.overlaps(b) for a, b in itertools.combinations(firsts, 2)):
                raise ValueError("alternatives in a regular expression must start differently")
            for branch in av[1]:
                _walk(branch, repeated, steps, False)
        elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            _walk(av if op is sre.ATOMIC_GROUP else av[-1], repeated, steps, mandatory)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            _walk(av[-1], repeated, steps, False)


def _walk_repeat(av: Any, repeated: bool, steps: list[_Step] | None, mandatory: bool) -> None:
    low, high, body = av
    if low == high:
        _walk(body, repeated or high > 1, steps, mandatory and low > 0)
        return
    if repeated:
        raise ValueError("a quantifier inside a repeated group is not allowed")
    if steps is not None:
        weight = min(high - low, MAX_REGEX_INPUT) + 1
        steps.append(_Step(_chars_of(body), weight, mandatory and low > 0))
    _walk(body, high > 1, steps if high == 1 else None, False)


def _check_quantifiers(steps: list[_Step]) -> None:
    """Quantifiers that may trade characters multiply the ways a failing match is tried;
    the heaviest such group must stay within `_BUDGET` choices."""
    quantifiers = [i for i, step in enumerate(steps) if step.weight]
    if len(quantifiers) > _MAX_QUANTIFIERS:
        raise ValueError(f"a regular expression has at most {_MAX_QUANTIFIERS} quantifiers")
    if math.prod(steps[i].weight for i in quantifiers) <= _BUDGET:
        return
    trade = {pair for pair in itertools.combinations(quantifiers, 2) if _may_trade(steps, *pair)}

    def grow(weight: int, candidates: list[int]) -> None:
        if weight > _BUDGET:
            raise ValueError("the quantifiers of this regular expression may backtrack too long")
        for k, i in enumerate(candidates):
            grow(weight * steps[i].weight, [j for j in candidates[k + 1 :] if (i, j) in trade])

    grow(1, quantifiers)


def _may_trade(steps: list[_Step], i: int, j: int) -> bool:
    """Whether quantifiers `i` < `j` may claim the same characters: not when `i` cannot
    match a character that must come between them, which therefore ends `i`'s run."""
    a, b = steps[i].chars, steps[j].chars
    if not a.overlaps(b):
        return False
    return not any(step.mandatory and not step.chars.overlaps(a) for step in steps[i + 1 : j])
