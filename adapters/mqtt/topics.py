"""Topic names of the edgeFLEX control services, as configuration with published defaults.

The defaults are the names the edgeFLEX code publishes on, misspelling included
(`measuremnts`: renaming it would cut the services off from the field). A config mapping
overrides any of them by key, e.g. `{"voltage": "/feeder7/measurements/voltage"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from pbgm.bus import check_topic
from pbgm.errors import ConfigurationError, InvalidInputError

__all__ = ["EDGEFLEX_TOPICS", "Topics"]


@dataclass(frozen=True, slots=True)
class Topics:
    """Where the voltage-control and MPC services read and write."""

    active_power: str = "/voltage_control/control/active_power"
    reactive_power: str = "/voltage_control/control/reactive_power"
    active_power_ess: str = "/voltage_control/control/active_power_ESS"
    voltage: str = "/voltage_control/measuremnts/voltage"
    pv: str = "/voltage_control/measuremnts/pv"
    flex_request: str = "/edgeflex/goflex/flex_request"
    flex_result: str = "/edgeflex/goflex/flex_result"

    def __post_init__(self) -> None:
        """Every name checked, however the topics were made (`from_mapping` or in code):
        a wildcard or an empty name would fail at every publish."""
        for f in fields(self):
            try:
                check_topic(getattr(self, f.name))
            except InvalidInputError as exc:
                raise ConfigurationError(f"topic `{f.name}`: {exc.message}") from None

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any] | None = None) -> Topics:
        """The defaults with `overrides` applied; unknown keys and bad names are refused."""
        overrides = dict(overrides or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known, key=str)
        if unknown:
            names = ", ".join(f"`{k}`" for k in sorted(known))
            raise ConfigurationError(f"unknown topic `{unknown[0]}`; known: {names}")
        return cls(**overrides)

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


EDGEFLEX_TOPICS = Topics()
