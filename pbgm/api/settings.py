"""The settings of the API and `pbgm serve`: `pbgm.ops.settings`, named here too.

Kept so that `from pbgm.api.settings import Settings` goes on working; the module
lives in `pbgm.ops` because the command line reads the same settings without Flask.
"""

from pbgm.ops.settings import (
    ENV_PREFIX,
    Settings,
    load_settings,
    resolve_settings,
    setting,
    settings_from,
    validated,
)

__all__ = [
    "ENV_PREFIX",
    "Settings",
    "load_settings",
    "resolve_settings",
    "setting",
    "settings_from",
    "validated",
]
