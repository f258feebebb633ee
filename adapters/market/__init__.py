"""The flexibility market: pbgm's REST peer for trading the MPC's flexibility.

`flexibility-market` is a grid service the event service starts (`run_service`) when a
`service_trigger` policy fires on the MPC's flexibility request
(`/edgeflex/goflex/flex_request`). It reformulates the request as FlexOffers following
each asset's `flexoffer` policy, validates every offer with `pbgm.flexoffer` before it
leaves, submits them over REST (`adapters.rest`; protocol: docs/market.md), follows
each offer's life cycle, checks the schedules against their offers and publishes the
`/edgeflex/goflex/flex_result` the MPC tracks. Every step is a PDP decision, written to
the decision log; no answer before the deadline is the fallback of domain.md §6.2
(zero set-points, ask again) with an audit entry.

Registered as `flexibility-market = adapters.market:create_service` in the entry-point
group `pbgm.services`; `adapters.market.testing.StandInMarket` is a small local market
for demos and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pbgm.bus import Bus
from pbgm.errors import ConfigurationError
from pbgm.events import load_policies
from pbgm.store.base import Store
from pbgm.store.factory import open_store
from pbgm.store.memory import MemoryStore

from ._client import MarketClient, MarketState
from ._config import RESULT_TOPIC, RUN_PARAMETERS, SERVICE_NAME, MarketSettings, RunSettings
from ._offers import NotOfferable, Timing
from ._service import FALLBACK_REASONS, MarketService

__all__ = [
    "FALLBACK_REASONS",
    "RESULT_TOPIC",
    "RUN_PARAMETERS",
    "SERVICE_NAME",
    "MarketClient",
    "MarketService",
    "MarketSettings",
    "MarketState",
    "NotOfferable",
    "RunSettings",
    "Timing",
    "create_service",
]


def create_service(bus: Bus, options: Mapping[str, Any]) -> MarketService:
    """The `pbgm.services` factory: the options are `MarketSettings` plus where the
    policies are, `store: <url>` (the pbgm repository) or `policies: [paths]`."""
    settings = MarketSettings.from_options(options)
    return MarketService(bus, store=_store(options, settings.service_id), settings=settings)


def _store(options: Mapping[str, Any], actor: str) -> Store:
    if options.get("store"):
        return open_store(str(options["store"]))
    paths = options.get("policies")
    if not isinstance(paths, list) or not paths:
        raise ConfigurationError(f"{SERVICE_NAME} needs `store` or `policies`")
    store = MemoryStore()
    for path in paths:
        load_policies(store, Path(str(path)), actor=actor)
    return store
