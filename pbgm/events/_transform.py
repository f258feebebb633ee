"""What a `data_access` permit asks of the data before it leaves: the transforming obligations.

Obligation ids and attributes (those of the example policy `kibernet-data-access`):

=================  ===================================================================
`drop-fields`      `fields`: fields removed from every payload, by name or by path into
                   nested objects (`meta.customer_id`)
`keep-fields`      `fields`: only these fields are kept (plus the time), by name or path
`round`            `decimals`: numbers rounded
`downsample`       `min_interval_s`, `method` (`last`, `mean`, `min`, `max`; default `last`)
`rename-topic`     `to`, optional `from` (a topic filter): the literal levels of `from`
                   before its first wildcard are replaced by `to` (no `from`: the
                   whole topic becomes `to`); a topic `from` does not match is kept
=================  ===================================================================

A field is named as in decision requests (`resource.<outer>.<inner>`): a top-level key,
or a dotted path into nested objects. A name that is a top-level key (even one with a
dot in it, such as a VILLASnode signal name) means that key; otherwise the dots walk
down the objects. A path that leads nowhere changes nothing.

Each handler records its part on a `Delivery`; the attributes are checked, and a bad
one raises, so the enforcement point denies (fail closed). Downsampling a list of
samples groups them into buckets of `min_interval_s` from the first sample; a stream
(`Downsampler`) lets its first message through and then at most one message per
interval, emitted when the first message after the interval arrives and aggregating
every message held since the previous one (there is no timer: a stream that stops
leaves its last bucket unsent).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pbgm.errors import InvalidInputError
from pbgm.functions import TopicFilter, match_levels, parse_topic_filter
from pbgm.model import Obligation, Request

METHODS = ("last", "mean", "min", "max")
TIME_FIELDS = frozenset({"t", "created", "time", "timestamp"})


def _bad(obligation: Obligation, message: str) -> InvalidInputError:
    return InvalidInputError(f"obligation `{obligation.id}`: {message}", code="invalid_obligation")


@dataclass
class Delivery:
    """The changes a permit demands, collected from its obligations."""

    drop: set[str] = field(default_factory=set)
    keep: set[str] | None = None
    decimals: int | None = None
    renames: list[tuple[TopicFilter | None, str]] = field(default_factory=list)
    min_interval_s: float | None = None
    method: str = "last"

    def fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """One payload with fields dropped, kept and rounded (paths reach nested ones)."""
        out = dict(fields)
        for name in self.drop:
            _drop_path(out, name)
        if self.keep is not None:
            kept = {k: v for k, v in out.items() if k in TIME_FIELDS}
            for name in self.keep:
                _copy_path(out, kept, name)
            out = kept
        if self.decimals is not None:
            out = {k: _rounded(v, self.decimals) for k, v in out.items()}
        return out

    def topic(self, topic: str) -> str:
        for topic_filter, to in self.renames:
            topic = rename_topic(topic, topic_filter, to)
        return topic

    def samples(self, samples: Sequence[tuple[float, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Timed payloads `(t, fields)` down-sampled, then transformed, as `{"t", ...}`."""
        if self.min_interval_s is not None:
            samples = downsample(samples, self.min_interval_s, self.method)
        return [{"t": t, **self.fields(fields)} for t, fields in samples]


def _rounded(value: Any, decimals: int) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, decimals)
    if isinstance(value, Mapping):
        return {k: _rounded(v, decimals) for k, v in value.items()}
    return value


def _drop_path(data: dict[str, Any], name: str) -> None:
    """Remove field `name` (a key, else a dotted path) from `data`, copying the nested
    objects it passes through so the caller's payload is left as it was."""
    if name in data or "." not in name:
        data.pop(name, None)
        return
    head, _, rest = name.partition(".")
    inner = data.get(head)
    if isinstance(inner, Mapping):
        copy = dict(inner)
        _drop_path(copy, rest)
        data[head] = copy


def _copy_path(source: Mapping[str, Any], target: dict[str, Any], name: str) -> None:
    """Copy field `name` (a key, else a dotted path) from `source` into `target`."""
    if name in source or "." not in name:
        if name in source:
            target[name] = source[name]
        return
    head, _, rest = name.partition(".")
    inner = source.get(head)
    if isinstance(inner, Mapping):
        existing = target.get(head)
        branch = existing if isinstance(existing, dict) else {}
        _copy_path(inner, branch, rest)
        if branch:
            target[head] = branch


def rename_topic(topic: str, topic_filter: TopicFilter | None, to: str) -> str:
    if topic_filter is None:
        return to
    if not match_levels(topic.split("/"), topic_filter.levels):
        return topic
    literal = 0
    while literal < len(topic_filter.levels) and topic_filter.levels[literal] not in ("+", "#"):
        literal += 1
    rest = topic.split("/")[literal:]
    return "/".join([to.rstrip("/"), *rest]) if rest else to


# --- aggregation ----------------------------------------------------------------------


def aggregate(group: Sequence[Mapping[str, Any]], method: str) -> dict[str, Any]:
    """One payload for a group: numbers combined by `method`, anything else the last value."""
    last = dict(group[-1])
    if method == "last" or len(group) == 1:
        return last
    combine = _COMBINE[method]
    for key, value in last.items():
        if key in TIME_FIELDS or not _is_number(value):
            continue
        numbers = [g[key] for g in group if _is_number(g.get(key))]
        last[key] = combine(numbers)
    return last


def _mean(numbers: list[float]) -> float:
    """The mean without overflow: `1e308` and `1e308` average to `1e308`, not infinity."""
    n = len(numbers)
    return sum(v / n for v in numbers)


_COMBINE: Mapping[str, Callable[[list[float]], float]] = {"mean": _mean, "min": min, "max": max}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def downsample(
    samples: Sequence[tuple[float, Mapping[str, Any]]], min_interval_s: float, method: str
) -> list[tuple[float, Mapping[str, Any]]]:
    """Buckets of `min_interval_s` from the first sample, each aggregated by `method`."""
    out: list[tuple[float, Mapping[str, Any]]] = []
    group: list[Mapping[str, Any]] = []
    start = t_last = 0.0
    for t, fields in samples:
        if group and t >= start + min_interval_s:
            out.append((t_last, aggregate(group, method)))
            group = []
        if not group:
            start = t
        group.append(fields)
        t_last = t
    if group:
        out.append((t_last, aggregate(group, method)))
    return out


class Downsampler:
    """At most one message per interval on a stream (see the module docstring)."""

    def __init__(self) -> None:
        self._last_emit: float | None = None
        self._held: list[Mapping[str, Any]] = []

    def offer(
        self, t: float, fields: Mapping[str, Any], min_interval_s: float, method: str
    ) -> dict[str, Any] | None:
        """The payload to send now, or None while the message is held."""
        if self._last_emit is None:
            self._last_emit = t
            return dict(fields)
        self._held.append(fields)
        if t < self._last_emit + min_interval_s:
            return None
        out = aggregate(self._held, method)
        self._held, self._last_emit = [], t
        return out


# --- the obligation handlers ----------------------------------------------------------


def _names(obligation: Obligation) -> set[str]:
    names = obligation.attributes.get("fields")
    if isinstance(names, str):
        names = (names,)
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise _bad(obligation, "`fields` must be a list of field names")
    return set(names)


def _drop(obligation: Obligation, delivery: Delivery) -> None:
    delivery.drop |= _names(obligation)


def _keep(obligation: Obligation, delivery: Delivery) -> None:
    names = _names(obligation)
    delivery.keep = names if delivery.keep is None else delivery.keep & names


def _round(obligation: Obligation, delivery: Delivery) -> None:
    decimals = obligation.attributes.get("decimals")
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 12:
        raise _bad(obligation, "`decimals` must be an integer from 0 to 12")
    delivery.decimals = decimals if delivery.decimals is None else min(delivery.decimals, decimals)


def _downsample(obligation: Obligation, delivery: Delivery) -> None:
    value = obligation.attributes.get("min_interval_s")
    method = obligation.attributes.get("method", "last")
    interval = float(value) if isinstance(value, int | float) and _is_number(value) else math.nan
    if not 0 < interval < math.inf:
        raise _bad(obligation, "`min_interval_s` must be a positive number")
    if method not in METHODS:
        raise _bad(obligation, f"`method` must be one of {', '.join(METHODS)}")
    if delivery.min_interval_s is None or interval > delivery.min_interval_s:
        delivery.min_interval_s, delivery.method = interval, str(method)


def _rename(obligation: Obligation, delivery: Delivery) -> None:
    to, source = obligation.attributes.get("to"), obligation.attributes.get("from")
    if not isinstance(to, str) or not to or "+" in to or "#" in to:
        raise _bad(obligation, "`to` must be a topic name without wildcards")
    try:
        parsed = None if source is None else parse_topic_filter(source)
    except (ValueError, TypeError):
        raise _bad(obligation, "`from` must be a topic filter") from None
    delivery.renames.append((parsed, to))


TRANSFORMS: Mapping[str, Callable[[Obligation, Delivery], None]] = {
    "drop-fields": _drop,
    "keep-fields": _keep,
    "round": _round,
    "downsample": _downsample,
    "rename-topic": _rename,
}


def transform_handlers(delivery: Delivery) -> dict[str, Callable[[Obligation, Request], None]]:
    """PEP handlers recording the transforming obligations on `delivery`."""
    return {name: _recording(apply, delivery) for name, apply in TRANSFORMS.items()}


def _recording(
    apply: Callable[[Obligation, Delivery], None], delivery: Delivery
) -> Callable[[Obligation, Request], None]:
    def handle(obligation: Obligation, _request: Request) -> None:
        apply(obligation, delivery)

    return handle
