"""`service_trigger` policies as the event service runs them.

The content of a published `service_trigger` policy (schema
`pbgm/policy/schemas/service_trigger.json`) says when to act: `event.topics` (filters),
`event.conditions` (all must hold), `event.hold_off_s`, `cooldown_s`,
`max_runs_per_hour`, `enabled`; and what to do: `actions`, which become obligations
(`run_service`, `return_data`, `revoke_access`, `publish_notification`, their
attributes the rest of the action) once the PDP permits the trigger.

Condition variables, read from the topic's recent history:

- `rocof` (Hz/s): least-squares slope of frequency over `window_ms`;
- `delta_p`: power step over `window_ms`, in MW, or in % of S_base when the unit
  is `%` (S_base from the `run_service` parameters `s_base_mw` / `s_base_mva`, else
  the subscription's `s_base_mw`; without one the condition does not hold);
- `frequency`, `active_power`: the newest value; any other name: the newest
  sample's payload field of that name, if it is a number.

A value that cannot be computed (too few samples) makes the condition false.
Hold-off counts in sample time from the first sample at which all conditions held;
the trigger then fires on the first sample after it, whether or not the conditions
still hold. Cool-down and the hourly limit count in the service's clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pbgm.functions import TopicFilter, match_levels, parse_topic_filter
from pbgm.model import Obligation, Policy, PolicySet
from pbgm.policy import thaw

from ._samples import TopicHistory

DEFAULT_WINDOWS_MS = {"rocof": 200, "delta_p": 500}


@dataclass(frozen=True, slots=True)
class Condition:
    variable: str
    operator: str
    threshold: float | None = None
    low: float | None = None
    high: float | None = None
    window_s: float = 0.2
    min_samples: int = 3
    percent: bool = False

    def value(self, history: TopicHistory, s_base_mw: float | None) -> float | None:
        newest = history.newest
        if newest is None:
            return None
        if self.variable == "rocof":
            return history.rocof(self.window_s, self.min_samples)
        if self.variable == "delta_p":
            step = history.delta_p(self.window_s, self.min_samples)
            if step is None or not self.percent:
                return step
            return None if not s_base_mw else 100.0 * step / s_base_mw
        if self.variable == "frequency":
            return newest.frequency
        if self.variable in ("active_power", "power"):
            return newest.power
        value = newest.fields.get(self.variable)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        op = self.operator
        if op == "greater_than":
            return value > self.threshold  # type: ignore[operator]
        if op == "less_than":
            return value < self.threshold  # type: ignore[operator]
        if op == "abs_greater_than":
            return abs(value) > self.threshold  # type: ignore[operator]
        inside = self.low <= value <= self.high  # type: ignore[operator]
        return inside if op == "inside_band" else not inside


@dataclass(frozen=True, slots=True)
class Trigger:
    """One `service_trigger` policy, ready to check against incoming samples."""

    policy_id: str
    topics: tuple[TopicFilter, ...]
    conditions: tuple[Condition, ...]
    actions: tuple[Obligation, ...]
    service: str | None = None
    hold_off_s: float = 0.0
    cooldown_s: float = 0.0
    max_runs_per_hour: int | None = None
    enabled: bool = True
    s_base_mw: float | None = None

    def watches(self, topic: str) -> bool:
        levels = topic.split("/")
        return any(match_levels(levels, f.levels) for f in self.topics)

    def holds(self, history: TopicHistory, s_base_mw: float | None) -> bool:
        s_base = self.s_base_mw or s_base_mw
        return all(c.holds(c.value(history, s_base)) for c in self.conditions)


def _condition(data: Mapping[str, Any]) -> Condition:
    variable = str(data["variable"])
    window_ms = data.get("window_ms", DEFAULT_WINDOWS_MS.get(variable, 200))
    return Condition(
        variable=variable,
        operator=str(data["operator"]),
        threshold=data.get("threshold"),
        low=data.get("low"),
        high=data.get("high"),
        window_s=window_ms / 1000.0,
        min_samples=int(data.get("min_samples", 3)),
        percent=data.get("unit") == "%",
    )


def _action(data: Mapping[str, Any]) -> Obligation:
    attributes = {k: v for k, v in data.items() if k != "kind"}
    return Obligation(str(data["kind"]), attributes)


def _s_base(actions: Iterable[Obligation]) -> float | None:
    for action in actions:
        parameters = action.attributes.get("parameters") or {}
        for key in ("s_base_mw", "s_base_mva"):
            value = parameters.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
    return None


def trigger_of(policy: Policy) -> Trigger:
    """The trigger a validated `service_trigger` policy describes."""
    content = thaw(policy.content)
    event = content["event"]
    actions = tuple(_action(a) for a in content["actions"])
    services = [a.attributes["service"] for a in actions if a.id == "run_service"]
    limit = content.get("max_runs_per_hour")
    return Trigger(
        policy_id=policy.id,
        topics=tuple(parse_topic_filter(t) for t in event["topics"]),
        conditions=tuple(_condition(c) for c in event["conditions"]),
        actions=actions,
        service=services[0] if services else None,
        hold_off_s=float(event.get("hold_off_s", 0)),
        cooldown_s=float(content.get("cooldown_s", 0)),
        max_runs_per_hour=int(limit) if limit is not None else None,
        enabled=bool(content.get("enabled", True)),
        s_base_mw=_s_base(actions),
    )


def triggers_of(policy_set: PolicySet) -> tuple[Trigger, ...]:
    return tuple(trigger_of(p) for p in policy_set.policies if p.type == "service_trigger")


@dataclass
class TriggerState:
    """What a trigger remembers between samples: armed topics and its recent firings."""

    armed: dict[str, float] = field(default_factory=dict)
    fired: deque[float] = field(default_factory=deque)

    def ready(self, trigger: Trigger, now: float) -> bool:
        """False while cooling down or at the hourly limit."""
        while self.fired and self.fired[0] <= now - 3600:
            self.fired.popleft()
        if self.fired and now < self.fired[-1] + trigger.cooldown_s:
            return False
        limit = trigger.max_runs_per_hour
        return limit is None or len(self.fired) < limit

    def check(
        self, trigger: Trigger, topic: str, history: TopicHistory, s_base: float | None, now: float
    ) -> bool:
        """True when the trigger fires on the newest sample of `topic` (recorded)."""
        newest = history.newest
        if not trigger.enabled or newest is None or not self.ready(trigger, now):
            return False
        armed_at = self.armed.get(topic)
        if armed_at is None:
            if not trigger.holds(history, s_base):
                return False
            if trigger.hold_off_s > 0:
                self.armed[topic] = newest.t
                return False
        elif newest.t < armed_at + trigger.hold_off_s:
            return False
        self.armed.pop(topic, None)
        self.fired.append(now)
        return True
