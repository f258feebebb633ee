"""Grid services the event service starts (`run_service`), found by name.

A grid service is a callable taking a `ServiceRun`: the service name, the parameters
of the obligation, and the triggering event with its window of samples. Where a
name is looked up, in order:

1. the in-process mapping passed to `EventService(services=...)`;
2. the configuration, `services: {<name>: {factory: "package.module:function", ...}}`;
3. the entry-point group `pbgm.services` (`<name> = package.module:function`).

Factories of 2 and 3 are called once, as `factory(bus, options)` with the options of
the configuration (without `factory`), and return the grid service. pbgm itself
never imports a grid service: `adapters.services.inertia` provides
`inertia-estimation` this way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from pbgm.bus import Bus, load_factory
from pbgm.errors import ConfigurationError, NotFoundError

from ._samples import Sample

SERVICE_ENTRY_POINT_GROUP = "pbgm.services"


@dataclass(frozen=True, slots=True)
class ServiceRun:
    """One start of a grid service, with the event that caused it."""

    service: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    topic: str = ""
    t_event: float = 0.0
    window: tuple[Sample, ...] = ()
    trigger: str | None = None
    timeout_s: float | None = None


GridService = Callable[[ServiceRun], object]
ServiceFactory = Callable[[Bus, Mapping[str, Any]], GridService]


class ServiceRegistry:
    """Grid services by name, built on first use (see the module docstring)."""

    def __init__(
        self,
        bus: Bus,
        services: Mapping[str, GridService] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._bus = bus
        self._services: dict[str, GridService] = dict(services or {})
        self._options = dict(options or {})
        self._lock = threading.Lock()

    def get(self, name: str) -> GridService:
        service = self._services.get(name)
        if service is None:
            with self._lock:
                service = self._services.get(name) or self._build(name)
                self._services[name] = service
        return service

    def _build(self, name: str) -> GridService:
        options = dict(self._options.get(name, {}))
        spec = options.pop("factory", None)
        if spec is not None:
            factory = load_factory(spec, f"service `{name}`")
        else:
            found = list(entry_points(group=SERVICE_ENTRY_POINT_GROUP, name=name))
            if not found:
                raise NotFoundError(
                    f"no grid service named `{name}`: configure a `factory` or install it"
                )
            factory = found[0].load()
        service = factory(self._bus, MappingProxyType(options))
        if not callable(service):
            raise ConfigurationError(f"the factory of service `{name}` returned no callable")
        return service  # type: ignore[no-any-return]
