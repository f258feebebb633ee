"""The pbgm REST API (Flask): policies, decisions, FlexOffers, administration.

`create_app(settings=None, *, store=None, pdp=None, keyring=None, clock=None)`
builds the app; `pbgm serve` runs it under gunicorn. One enforcement hook
(`pbgm.api._enforce`) guards every endpoint but the public ones with the API's
own policy (`pbgm.api.access_policy`); errors are mapped to HTTP in
`pbgm.api.errors`; settings come from `PBGM_*` variables (`pbgm.api.settings`).
"""

from pbgm.api._app import Services, create_app
from pbgm.api.settings import Settings, load_settings

__all__ = ["Services", "Settings", "create_app", "load_settings"]
