"""The settings of the flexibility-market service, and the parameters of one run.

The service's settings come from the event service's configuration
(`services: {flexibility-market: {...}}`, docs/market.md "Configuration"); the market
endpoints and the references to their credentials live there and nowhere else. A run's
parameters come from the `run_service` action of the `service_trigger` policy and may
only pick among what the settings allow (a market by name, the timing): a policy never
carries an endpoint or a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from adapters.rest import RestEndpoint
from pbgm.bus import check_topic
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.policy import config_data

from ._offers import Timing

SERVICE_NAME = "flexibility-market"
RESULT_TOPIC = "/edgeflex/goflex/flex_result"
SERVICE_ID = "pbgm-market"

_NUMBERS: Mapping[str, tuple[float, float, type]] = {
    "response_timeout_s": (0.05, 86400.0, float),
    "poll_interval_s": (0.01, 3600.0, float),
    "step_s": (1, 86400, int),
    "accept_within_s": (0, 86400, int),
    "assign_within_s": (0, 86400, int),
    "qos": (0, 2, int),
}
RUN_PARAMETERS = frozenset(
    {"market", "requester", "window_s", *(k for k in _NUMBERS if k != "qos")}
)
"""What a `run_service` action may set (`window_s` is the event service's)."""

SETTINGS = frozenset(
    {
        "store",
        "policies",
        "policy_group",
        "service_id",
        "offered_by",
        "topic",
        "markets",
        "default_market",
        "requester",
        *_NUMBERS,
    }
)


def _no_markets() -> Mapping[str, RestEndpoint]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MarketSettings:
    """See docs/market.md "Configuration"."""

    markets: Mapping[str, RestEndpoint] = field(default_factory=_no_markets)
    default_market: str | None = None
    policy_group: str = "flexibility"
    service_id: str = SERVICE_ID
    offered_by: str = SERVICE_ID
    requester: str = "svc-voltage-control"
    topic: str = RESULT_TOPIC
    qos: int = 1
    response_timeout_s: float = 30.0
    poll_interval_s: float = 0.5
    step_s: int = 900
    accept_within_s: int = 60
    assign_within_s: int = 120

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MarketSettings:
        unknown = sorted(set(options) - SETTINGS)
        if unknown:
            raise _invalid(unknown[0], f"not a setting of `{SERVICE_NAME}` ({sorted(SETTINGS)})")
        markets = options.get("markets")
        if not isinstance(markets, Mapping) or not markets:
            raise _invalid("markets", "a mapping of market names to endpoints")
        endpoints = {str(name): _endpoint(name, value) for name, value in markets.items()}
        values: dict[str, Any] = {"markets": MappingProxyType(endpoints)}
        for name in ("policy_group", "service_id", "offered_by", "topic", "requester"):
            if name in options:
                values[name] = _text(options[name], name)
        if "topic" in values:
            values["topic"] = _topic(values["topic"])
        values.setdefault("offered_by", values.get("service_id", SERVICE_ID))
        values.update(_numbers(options))
        default = options.get("default_market")
        if default is None and len(endpoints) == 1:
            default = next(iter(endpoints))
        if default is not None and default not in endpoints:
            raise _invalid("default_market", f"one of the `markets` ({sorted(endpoints)})")
        values["default_market"] = default
        return cls(**values)

    def checked(self) -> MarketSettings:
        """These settings read back through `from_options` (the same rules), for settings
        made in code: a value the configuration would be refused for raises the same
        `ConfigurationError` naming the setting, when the service is made rather than at
        every run. Returns `self` when the reading changes nothing, as for every
        `from_options` result; else the reading (a None `default_market` is the only
        market), which is what to use. Each endpoint is checked by its own rules."""
        plain = {**config_data(self), "markets": self.markets}  # endpoints check themselves
        reading = MarketSettings.from_options(plain)
        return self if reading == self else reading

    def for_run(self, parameters: Mapping[str, Any]) -> RunSettings:
        """The settings of one run: the action's parameters over these settings."""
        unknown = sorted(set(parameters) - RUN_PARAMETERS)
        if unknown:
            raise _invalid(unknown[0], f"not a run parameter ({sorted(RUN_PARAMETERS)})")
        market = parameters.get("market", self.default_market)
        if market not in self.markets:
            raise _invalid("market", f"a market of the configuration ({sorted(self.markets)})")
        numbers = _numbers({k: v for k, v in parameters.items() if k in _NUMBERS})
        merged = replace(self, **numbers)
        requester = _text(parameters.get("requester", self.requester), "requester")
        timing = Timing(merged.step_s, merged.accept_within_s, merged.assign_within_s)
        return RunSettings(
            str(market), requester, merged.response_timeout_s, merged.poll_interval_s, timing
        )


@dataclass(frozen=True, slots=True)
class RunSettings:
    market: str
    requester: str
    response_timeout_s: float
    poll_interval_s: float
    timing: Timing


def _numbers(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (low, high, kind) in _NUMBERS.items():
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid(name, f"a number from {low} to {high}")
        if kind is int and not float(value).is_integer():
            raise _invalid(name, f"a whole number from {low} to {high}")
        if not low <= value <= high:
            raise _invalid(name, f"from {low} to {high}, not {value}")
        out[name] = kind(value)
    return out


def _endpoint(name: Any, value: Any) -> RestEndpoint:
    """A market's endpoint: its settings read by `RestEndpoint.from_mapping`, or one made
    already checked by the same rules (`RestEndpoint.checked`)."""
    where = f"markets.{name}"
    if isinstance(value, RestEndpoint):
        return value.checked(f"$.{where}")
    return RestEndpoint.from_mapping(_mapping(value, where), name=str(name), where=f"$.{where}")


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(name, "a mapping (an endpoint: base_url, auth, timeout_s, ...)")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise _invalid(name, "a non-empty text of at most 255 characters")
    return value


def _topic(topic: str) -> str:
    """The results' topic: a name to publish on (no wildcard), not a filter."""
    try:
        return check_topic(topic)
    except InvalidInputError as error:
        raise _invalid("topic", error.message) from None


def _invalid(name: str, expected: str) -> ConfigurationError:
    return ConfigurationError(f"{SERVICE_NAME}: `{name}`: {expected}", code="invalid_setting")
