"""pbgm_admin: the admin GUI, a Flask blueprint mounted by the app factory at `/admin/`.

Grid-operator staff sign in with a user of the repository (`pbgm admin
create-user NAME --admin` makes the first administrator), see what is in
force, author policies in forms generated from the JSON Schemas of their
types, try requests against the published set and a draft beside it, and
publish, retire or roll back with a reason that goes to the audit log.

It works on the same store, PAP and Access Point as the REST API (the API's
`Services`), and protects itself as the API does: one `before_request` hook
asking pbgm's own PDP (`pbgm_admin.access_policy`). Every asset is served by
pbgm itself; the pages work without JavaScript.

`mount(app, services)` is the `pbgm.api.mounts` entry point `create_app` calls.
Settings (environment): `PBGM_ADMIN_IDLE_TIMEOUT` (seconds a session may stay
unused, default 900), `PBGM_ADMIN_SESSION_KEY` (the key that signs session
cookies; by default one is made once in the keys directory,
`admin-session.key`, which every worker shares).
"""

from __future__ import annotations

from pbgm_admin._app import BLUEPRINT_NAME, admin_gui_blueprint, mount

__all__ = ["BLUEPRINT_NAME", "admin_gui_blueprint", "mount"]
