"""The policy loader: a control service's policies, current, validated and available offline.

A service names the pbgm server, its credentials and the policies it needs in a
config file (`load_config`, see `pbgm.loader._config` for the format), or in a
`LoaderConfig` made in code and held to the same rules (`validated_config`); a
`PolicyLoader` fetches them with `If-None-Match`, validates every new copy before
handing it over, delivers it to an in-process callback or a retained bus topic,
keeps the last good copy on disk and serves it, with its age, while pbgm cannot
be reached. Change notices on the bus make a change arrive without waiting for
the next poll; polling stays as the fallback. `pbgm loader run --config FILE`
runs one from the command line.

Standard library only for HTTP (no requests, no paho): the core stays free of
frameworks; the bus is whatever `pbgm.bus.Bus` the caller passes.
"""

from pbgm.loader._cache import CACHE_FORMAT, GoodCopy
from pbgm.loader._client import PolicyClient, ServerUnavailableError
from pbgm.loader._config import (
    DEFAULT_TOPIC,
    Delivery,
    LoaderConfig,
    LoaderConfigError,
    PolicySpec,
    load_config,
    parse_config,
    validated_config,
)
from pbgm.loader._loader import PolicyLoader, Sink
from pbgm.loader._slot import LoadedPolicy, PolicyState

__all__ = [
    "CACHE_FORMAT",
    "DEFAULT_TOPIC",
    "Delivery",
    "GoodCopy",
    "LoadedPolicy",
    "LoaderConfig",
    "LoaderConfigError",
    "PolicyClient",
    "PolicyLoader",
    "PolicySpec",
    "PolicyState",
    "ServerUnavailableError",
    "Sink",
    "load_config",
    "parse_config",
    "validated_config",
]
