"""Nothing typed is lost when a session expires: the form is carried over the sign-in.

A form sent after its session idled out (its CSRF token still valid, so it
came from the user's own page) is not applied and not thrown away: the
sign-in page comes back with the form's fields in one hidden input, signed
with the session key and bound to the user whose session expired. Signing in
again as that user shows the resume page: a form with the same fields, a
fresh CSRF token and `resume=1`, posted to where the form was going.

- Editor forms (`RESTORED`) come back filled with what was typed and save
  nothing until the user saves again (a lost race then shows the conflict
  page as usual); with JavaScript the resume page goes there by itself.
- Any other form waits for the user to send it again on purpose.
- Passwords and secrets are never carried (they are typed again), nor files.
- Another user signing in gets nothing of it; a carried form older than
  `MAX_AGE_S` or larger than `MAX_CARRIED_BYTES` is dropped.

The signature keeps the user and the target path from being forged; it does
not hide the fields, which the browser held already.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "pbgm-admin-carried-form"
MAX_AGE_S = 86_400
MAX_CARRIED_BYTES = 512 * 1024
RESTORED = frozenset({"gui.create_policy", "gui.save_policy", "gui.run_try_it"})
"""Forms shown again filled in on resume; nothing they do changes the repository."""
NEVER_CARRIED = ("csrf_token", "password", "secret", "resume")


@dataclass(frozen=True)
class Carried:
    """A form sent after its session expired, as the resume page sends it again."""

    user: str
    endpoint: str
    path: str
    fields: tuple[tuple[str, str], ...]

    @property
    def restored(self) -> bool:
        return self.endpoint in RESTORED


def _serializer() -> URLSafeTimedSerializer:
    key = current_app.secret_key  # the session key, set by the GUI's first request
    if not key:
        raise RuntimeError("the admin GUI's session key is not set yet")
    return URLSafeTimedSerializer(key, salt=SALT)


def carry(user: str, endpoint: str) -> str:
    """The signed text of the current form for the sign-in page ("" when too large)."""
    fields = [
        [name, value]
        for name, value in request.form.items(multi=True)
        if not any(word in name.lower() for word in NEVER_CARRIED)
    ]
    data = {"user": user, "endpoint": endpoint, "path": request.path, "fields": fields}
    if len(json.dumps(data)) > MAX_CARRIED_BYTES:
        return ""
    return str(_serializer().dumps(data))


def carried(text: str) -> Carried | None:
    """The form in `text` if its signature holds and it is young enough."""
    if not text or len(text) > 2 * MAX_CARRIED_BYTES:
        return None
    try:
        data = _serializer().loads(text, max_age=MAX_AGE_S)
    except BadSignature:  # a forged, altered or expired text
        return None
    path = data.get("path", "")
    if not isinstance(path, str) or not path.startswith("/admin/"):
        return None
    fields = tuple((str(k), str(v)) for k, v in data.get("fields", ()))
    return Carried(str(data.get("user", "")), str(data.get("endpoint", "")), path, fields)
