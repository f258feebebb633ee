"""`MosquittoDynsec`: an `AccessPlan` enforced by Mosquitto 2's dynamic-security plugin.

The plugin (`mosquitto_dynamic_security.so`) keeps clients, groups and roles and is
managed by JSON commands published on `$CONTROL/dynamic-security/v1`; it answers on
`$CONTROL/dynamic-security/v1/response`. pbgm talks to it as an admin client (a
client with the plugin's `admin` role, such as the one `mosquitto_ctrl dynsec init`
makes) over any `pbgm.bus.Bus` able to reach `$CONTROL` topics (`adapters.mqtt`).

What pbgm makes of a plan:

- the default ACL access: deny `publishClientSend`, `publishClientReceive` and
  `subscribe` (allow `unsubscribe`): nothing is allowed unless a role allows it;
- per client of the plan: a client (username = principal, the password pbgm derives,
  `textname` a fingerprint of that password so a rotated secret is noticed) with one
  role `pbgm-client-<username>` holding its grants: a `subscribe` grant becomes a
  `subscribePattern` and a `publishClientReceive` ACL (the plugin checks the latter on
  every message delivered, so a withdrawn grant stops the flow at once, whatever the
  client subscribed to before), a `publish` grant a `publishClientSend` ACL; the relay
  guard is a deny of priority 1000, evaluated before any allow;
- disabled principals' clients are disabled (the plugin disconnects them).

Every object pbgm makes says `managed by pbgm` in its `textdescription`; pbgm changes
and deletes only those, so an operator's own clients (the admin) are left alone. A
client that exists under a principal's name but is not pbgm's is reported as a
conflict and left as it is.

Each `apply` reads the plugin's state (`listClients`, `listRoles`,
`getDefaultACLAccess`), sends the commands that make it the plan in one message and
checks every answer. The plugin does not echo MQTT 5 correlation data, and every admin
receives every answer, so each batch ends with a command named `pbgm-batch-<nonce>`:
the plugin answers it as an unknown command, echoing the name, which identifies the
answer to this batch.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.broker._control import Applied, BrokerControlError
from adapters.broker._credentials import fingerprint
from adapters.broker._plan import PUBLISH, AccessPlan, ClientPlan, Grant
from pbgm.bus import Bus, BusMessage
from pbgm.errors import PbgmError

log = logging.getLogger("adapters.broker")

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
MARK = "managed by pbgm"
ROLE_PREFIX = "pbgm-client-"
DEFAULT_ACCESS = (
    ("publishClientSend", False),
    ("publishClientReceive", False),
    ("subscribe", False),
    ("unsubscribe", True),
)
BATCH = 200


def acls_of(grants: Sequence[Grant]) -> list[dict[str, Any]]:
    """The plugin's ACLs for a client's grants, in a stable order."""
    out = []
    for grant in grants:
        kinds = ("publishClientSend",) if grant.kind == PUBLISH else (
            "subscribePattern", "publishClientReceive",
        )  # fmt: skip
        for kind in kinds:
            out.append(
                {"acltype": kind, "topic": grant.topic, "priority": grant.priority,
                 "allow": grant.allow}
            )  # fmt: skip
    return sorted(out, key=_acl_key)


def _acl_key(acl: Mapping[str, Any]) -> tuple[Any, ...]:
    return (acl["acltype"], acl["topic"], int(acl.get("priority", 0)), bool(acl["allow"]))


class MosquittoDynsec:
    """A `BrokerAccessControl` for Mosquitto 2 (see the module docstring)."""

    def __init__(self, bus: Bus, *, timeout_s: float = 10.0) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self._lock = threading.Lock()  # one batch at a time
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._arrived = threading.Condition()
        bus.subscribe(RESPONSE_TOPIC, self._on_response, qos=1)

    # --- the protocol -------------------------------------------------------------------

    def apply(self, plan: AccessPlan) -> Applied:
        """Make the broker enforce `plan`; idempotent (a second call sends nothing)."""
        with self._lock:
            state = self._state()
            applied = Applied()
            commands = self._commands(plan, state, applied)
            for start in range(0, len(commands), BATCH):
                chunk = commands[start : start + BATCH]
                answers = self._send(chunk)
                applied.commands += len(chunk)
                applied.errors += [
                    f"{a.get('command')}: {a['error']}" for a in answers if a.get("error")
                ]
        for error in applied.errors:
            log.error("broker refused a command: %s", error)
        return applied

    def close(self) -> None:
        try:
            self.bus.unsubscribe(RESPONSE_TOPIC)
        except PbgmError:
            log.debug("could not unsubscribe from `%s`", RESPONSE_TOPIC)

    # --- reading the plugin's state -------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        answers = self._send(
            [
                {"command": "listClients", "verbose": True, "count": -1, "offset": 0},
                {"command": "listRoles", "verbose": True, "count": -1, "offset": 0},
                {"command": "getDefaultACLAccess"},
            ]
        )
        failed = [a for a in answers if a.get("error")]
        if failed:
            raise BrokerControlError(
                f"the broker's access control cannot be read: {failed[0]['error']}"
            )
        clients = {c["username"]: c for c in answers[0]["data"]["clients"]}
        roles = {r["rolename"]: r for r in answers[1]["data"]["roles"]}
        defaults = {a["acltype"]: a["allow"] for a in answers[2]["data"]["acls"]}
        return {"clients": clients, "roles": roles, "defaults": defaults}

    # --- what to change -------------------------------------------------------------------

    def _commands(
        self, plan: AccessPlan, state: Mapping[str, Any], applied: Applied
    ) -> list[dict[str, Any]]:
        commands: list[dict[str, Any]] = []
        if any(state["defaults"].get(k) != allow for k, allow in DEFAULT_ACCESS):
            acls = [{"acltype": k, "allow": allow} for k, allow in DEFAULT_ACCESS]
            commands.append({"command": "setDefaultACLAccess", "acls": acls})
        clients, roles = state["clients"], state["roles"]
        wanted_roles: set[str] = set()
        for client in plan.clients:
            existing = clients.get(client.username)
            if existing is not None and existing.get("textdescription") != MARK:
                applied.conflicts.append(client.username)
                log.error(
                    "broker client `%s` exists and is not managed by pbgm: left as it is",
                    client.username,
                )
                continue
            role = ROLE_PREFIX + client.username
            wanted_roles.add(role)
            commands += _role_commands(role, client, roles.get(role))
            commands += _client_commands(role, client, existing)
        for username, existing in clients.items():
            if existing.get("textdescription") == MARK and plan.client(username) is None:
                commands.append({"command": "deleteClient", "username": username})
        for name, existing in roles.items():
            if existing.get("textdescription") == MARK and name not in wanted_roles:
                commands.append({"command": "deleteRole", "rolename": name})
        return commands

    # --- talking to the plugin ------------------------------------------------------------

    def _send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send one batch and wait for its answers (without the marker's)."""
        marker = f"pbgm-batch-{secrets.token_hex(8)}"
        body = {"commands": [*commands, {"command": marker}]}
        with self._arrived:
            self._answers.pop(marker, None)
        self.bus.publish(CONTROL_TOPIC, json.dumps(body).encode(), qos=1)
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: marker in self._answers, self.timeout_s)
            answers = self._answers.pop(marker, None)
        if not arrived or answers is None:
            raise BrokerControlError(
                f"the broker did not answer on `{RESPONSE_TOPIC}` within {self.timeout_s:g} s "
                "(is the dynamic-security plugin loaded, and is this client its admin?)"
            )
        return answers[:-1]

    def _on_response(self, message: BusMessage) -> None:
        try:
            responses = json.loads(message.payload)["responses"]
            last = responses[-1]["command"]
        except (ValueError, KeyError, IndexError, TypeError):
            log.debug("an answer of the dynamic-security plugin that is not ours")
            return
        if isinstance(last, str) and last.startswith("pbgm-batch-"):
            with self._arrived:
                if len(self._answers) > 64:  # answers nobody waits for any more
                    self._answers.clear()
                self._answers[last] = responses
                self._arrived.notify_all()


def _role_commands(
    role: str, client: ClientPlan, existing: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    acls = acls_of(client.grants)
    if existing is None:
        return [{"command": "createRole", "rolename": role, "textdescription": MARK, "acls": acls}]
    if existing.get("textdescription") != MARK:
        return []  # not ours: the client's conflict is reported
    have = sorted((dict(a) for a in existing.get("acls", [])), key=_acl_key)
    if [_acl_key(a) for a in have] == [_acl_key(a) for a in acls]:
        return []
    return [{"command": "modifyRole", "rolename": role, "acls": acls}]


def _client_commands(
    role: str, client: ClientPlan, existing: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    mark = fingerprint(client.password)
    roles = [{"rolename": role, "priority": 0}]
    if existing is None:
        create = {
            "command": "createClient", "username": client.username,
            "password": client.password, "textname": mark, "textdescription": MARK,
            "roles": roles,
        }  # fmt: skip
        return [create] + ([] if client.enabled else [_enabled(client.username, False)])
    commands: list[dict[str, Any]] = []
    change: dict[str, Any] = {}
    if [r.get("rolename") for r in existing.get("roles", [])] != [role] or existing.get("groups"):
        change.update(roles=roles, groups=[])
    if existing.get("textname") != mark:
        change.update(password=client.password, textname=mark)
    if change:
        commands.append({"command": "modifyClient", "username": client.username, **change})
    if bool(existing.get("disabled", False)) == client.enabled:
        commands.append(_enabled(client.username, client.enabled))
    return commands


def _enabled(username: str, enabled: bool) -> dict[str, Any]:
    return {"command": "enableClient" if enabled else "disableClient", "username": username}
