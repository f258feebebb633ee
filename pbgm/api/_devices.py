"""5G device management over REST: the device registry, device groups, device actions.

Device and group ids are names (`[A-Za-z0-9._-]`, at most 100 characters) and travel
as they are in paths. Scopes: `devices:read` (registry, groups, connectivity),
`devices:admin` (registry and membership changes), `devices:write` (actions); every
action is then decided device by device by the `device_qos` policies
(`pbgm.devices`), before any call to the operator's network.

One device: `POST /devices/<id>/qos` starts a QoS session (`201`), `PATCH` extends it,
`DELETE` releases it; `POST|DELETE /devices/<id>/provisioning` assigns or revokes a
QoS profile; `GET /devices/<id>/connectivity` is the status last seen, `POST`
retrieves it from the network, `POST .../connectivity/subscriptions` asks for
notifications. A denial is `403` (its `code` says why), a network failure the
status of its code (`pbgm.api.errors`).

A group: the same paths under `/device-groups/<id>` act on every member; the answer
is `200` when all succeeded, else `207` with every device's result and the names
of those that failed and why (`pbgm.devices.GroupResult`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request, url_for

from pbgm.api._http import actor, json_body, json_response, query
from pbgm.devices import (
    DeviceManager,
    GroupResult,
    connectivity_of,
    device_json,
    group_connectivity,
    group_json,
    read_action,
    read_device,
    read_group,
    read_membership,
)
from pbgm.devices._views import LIVE
from pbgm.errors import ConflictError
from pbgm.model import Clock
from pbgm.store._device_rules import check_name
from pbgm.store.base import Store

ACTION_ROUTES = (
    # (path tail, method, endpoint, device action, status of a one-device success)
    ("/qos", "POST", "start_qos", "start", 201),
    ("/qos", "PATCH", "extend_qos", "extend", 200),
    ("/qos", "DELETE", "release_qos", "release", 200),
    ("/provisioning", "POST", "provision", "provision", 201),
    ("/provisioning", "DELETE", "deprovision", "deprovision", 200),
    ("/connectivity", "POST", "monitor", "refresh", 200),
    ("/connectivity/subscriptions", "POST", "subscribe", "subscribe", 201),
)


class DeviceInUseError(ConflictError):
    code = "device_in_use"


def _body() -> Any:
    """The JSON body, or None when there is none (actions without parameters)."""
    return json_body() if request.content_length or request.mimetype else None


def group_answer(result: GroupResult) -> Response:
    return json_response(result.as_json(), 200 if result.outcome == "all" else 207)


def devices_blueprint(store: Store, manager: DeviceManager, clock: Clock) -> Blueprint:
    blueprint = Blueprint("devices", __name__, url_prefix="/api/v1")

    @blueprint.get("/devices", endpoint="list")
    def list_devices() -> Response:
        given = query(("group", "asset_id"))
        if "group" in given:
            check_name(given["group"], "device group id")
        found = store.list_devices(group=given.get("group"), asset_id=given.get("asset_id"))
        return json_response({"devices": [device_json(d) for d in found]})

    @blueprint.post("/devices", endpoint="create")
    def create() -> Response:
        query(())
        made = store.add_device(read_device(json_body()), actor=actor())
        location = url_for("devices.get", device_id=made.id)
        return json_response(device_json(made, []), 201, headers={"Location": location})

    @blueprint.get("/devices/<device_id>", endpoint="get")
    def get(device_id: str) -> Response:
        query(())
        found = store.get_device(check_name(device_id, "device id"))
        answer = device_json(found, store.device_groups_of(found.id))
        answer["connectivity"] = connectivity_of(store, found.id, clock())
        return json_response(answer)

    @blueprint.put("/devices/<device_id>", endpoint="update")
    def update(device_id: str) -> Response:
        query(())
        device = read_device(json_body(), device_id=check_name(device_id, "device id"))
        changed = store.update_device(device, actor=actor())
        return json_response(device_json(changed, store.device_groups_of(changed.id)))

    @blueprint.delete("/devices/<device_id>", endpoint="delete")
    def delete(device_id: str) -> Response:
        query(())
        found = store.get_device(check_name(device_id, "device id"))
        held = [r for r in store.list_network_resources(device_id=found.id) if r.status in LIVE]
        if held:
            kinds = sorted({r.kind for r in held})
            raise DeviceInUseError(
                f"device `{found.id}` holds {', '.join(kinds)} at the operator: release them "
                "first (DELETE .../qos, .../provisioning)"
            )
        store.delete_device(found.id, actor=actor())
        return Response(status=204)

    @blueprint.get("/devices/<device_id>/qos", endpoint="qos")
    def qos(device_id: str) -> Response:
        query(())
        view = connectivity_of(store, check_name(device_id, "device id"), clock())
        keys = ("device", "qos_session", "qos_assignment")
        return json_response({k: view[k] for k in keys})

    @blueprint.get("/devices/<device_id>/connectivity", endpoint="connectivity")
    def connectivity(device_id: str) -> Response:
        query(())
        return json_response(connectivity_of(store, check_name(device_id, "device id"), clock()))

    for tail, method, endpoint, action, status in ACTION_ROUTES:
        blueprint.add_url_rule(
            f"/devices/<device_id>{tail}",
            endpoint=endpoint,
            view_func=_device_action(manager, action, status),
            methods=[method],
        )
    return blueprint


def _device_action(manager: DeviceManager, action: str, status: int) -> Any:
    def view(device_id: str) -> Response:
        query(())
        device_id = check_name(device_id, "device id")
        params = read_action(action, _body())
        result = manager.act(action, actor(), device_id, **params)
        return json_response(result.as_json(), status)

    view.__name__ = f"device_{action}"
    return view


def device_groups_blueprint(store: Store, manager: DeviceManager, clock: Clock) -> Blueprint:
    blueprint = Blueprint("device_groups", __name__, url_prefix="/api/v1")

    @blueprint.get("/device-groups", endpoint="list")
    def list_groups() -> Response:
        query(())
        return json_response({"groups": [group_json(g) for g in store.list_device_groups()]})

    @blueprint.post("/device-groups", endpoint="create")
    def create() -> Response:
        query(())
        made = store.add_device_group(read_group(json_body()), actor=actor())
        location = url_for("device_groups.get", group_id=made.id)
        return json_response(group_json(made), 201, headers={"Location": location})

    @blueprint.get("/device-groups/<group_id>", endpoint="get")
    def get(group_id: str) -> Response:
        query(())
        return json_response(group_json(store.get_device_group(check_name(group_id, "group id"))))

    @blueprint.delete("/device-groups/<group_id>", endpoint="delete")
    def delete(group_id: str) -> Response:
        query(())
        store.delete_device_group(check_name(group_id, "group id"), actor=actor())
        return Response(status=204)

    @blueprint.patch("/device-groups/<group_id>/members", endpoint="members")
    def members(group_id: str) -> Response:
        """Add and remove members in one transaction: all of it or nothing."""
        query(())
        group_id = check_name(group_id, "group id")
        add, remove = read_membership(json_body())
        who = actor()
        with store.atomic() as view:
            if add:
                view.add_device_members(group_id, add, actor=who)
            if remove:
                view.remove_device_members(group_id, remove, actor=who)
        return json_response(group_json(store.get_device_group(group_id)))

    @blueprint.get("/device-groups/<group_id>/connectivity", endpoint="connectivity")
    def connectivity(group_id: str) -> Response:
        query(())
        return json_response(group_connectivity(store, check_name(group_id, "group id"), clock()))

    for tail, method, endpoint, action, _ in ACTION_ROUTES:
        blueprint.add_url_rule(
            f"/device-groups/<group_id>{tail}",
            endpoint=endpoint,
            view_func=_group_action(manager, action),
            methods=[method],
        )
    return blueprint


def _group_action(manager: DeviceManager, action: str) -> Any:
    def view(group_id: str) -> Response:
        query(())
        group_id = check_name(group_id, "group id")
        params = read_action(action, _body())
        return group_answer(manager.act_on_group(action, actor(), group_id, **params))

    view.__name__ = f"group_{action}"
    return view
