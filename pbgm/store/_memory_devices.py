"""The memory store's devices, device groups, network resources and device status.

A mixin of `pbgm.store.memory.MemoryStore`, kept apart so that each module holds one
concept. Every change is audited; none moves the revision: device facts are read
fresh by each decision (`pbgm.devices`), not compiled into a policy set.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pbgm.errors import AlreadyExistsError, NotFoundError
from pbgm.model import Clock
from pbgm.store import _common as common
from pbgm.store import _device_rules as rules
from pbgm.store._memory_state import State
from pbgm.store.base import AuditEntry, Device, DeviceGroup, DeviceStatus, NetworkResource


def _out_device(device: Device) -> Device:
    return replace(device, identifiers=copy.deepcopy(device.identifiers))


def _out_resource(resource: NetworkResource) -> NetworkResource:
    return replace(resource, details=copy.deepcopy(resource.details))


class MemoryDevices:
    """Device operations of the memory store."""

    _clock: Clock
    _lock: threading.RLock

    def _live(self) -> State:
        raise NotImplementedError

    def _audit_only(
        self, at: datetime, actor: str, action: str, kind: str, object_id: str, details: Any
    ) -> AuditEntry:
        raise NotImplementedError

    # -- devices

    def _device(self, device_id: str) -> Device:
        device = self._live().devices.get(device_id)
        if device is None:
            raise common.not_found("device", device_id)
        return device

    def _check_unique(self, device: Device) -> None:
        wanted = rules.unique_keys(device)
        for other in self._live().devices.values():
            if other.id == device.id:
                continue
            for name, value in rules.unique_keys(other).items():
                if wanted.get(name) == value:
                    raise AlreadyExistsError(f"`{name}` `{value}` is taken by device `{other.id}`")

    def add_device(self, device: Device, *, actor: str) -> Device:
        with self._lock:
            at = common.now(self._clock)
            device = rules.check_device(device, actor, at)
            state = self._live()
            if device.id in state.devices:
                raise common.already_exists("device", device.id)
            self._check_unique(device)
            state.devices[device.id] = device
            self._audit_only(at, actor, "device.add", "device", device.id, {})
            return _out_device(device)

    def update_device(self, device: Device, *, actor: str) -> Device:
        with self._lock:
            at = common.now(self._clock)
            device = rules.check_device(device, actor, at)
            current = self._device(device.id)
            self._check_unique(device)
            device = replace(device, created_at=current.created_at)
            self._live().devices[device.id] = device
            self._audit_only(at, actor, "device.update", "device", device.id, {})
            return _out_device(device)

    def get_device(self, device_id: str) -> Device:
        with self._lock:
            return _out_device(self._device(device_id))

    def list_devices(
        self, *, group: str | None = None, asset_id: str | None = None
    ) -> list[Device]:
        with self._lock:
            state = self._live()
            if group is not None:
                self._group(group)
            members = {d for g, d in state.device_members if g == group}
            found = [
                d
                for d in state.devices.values()
                if (group is None or d.id in members)
                and (asset_id is None or d.asset_id == asset_id)
            ]
        return [_out_device(d) for d in sorted(found, key=lambda d: d.id)]

    def delete_device(self, device_id: str, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            self._device(device_id)
            state = self._live()
            del state.devices[device_id]
            state.device_members = {(g, d) for g, d in state.device_members if d != device_id}
            state.resources = {k: r for k, r in state.resources.items() if r.device_id != device_id}
            state.statuses.pop(device_id, None)
            self._audit_only(at, actor, "device.delete", "device", device_id, {})

    # -- groups

    def _group(self, group_id: str) -> DeviceGroup:
        group = self._live().device_groups.get(group_id)
        if group is None:
            raise common.not_found("device group", group_id)
        return group

    def _with_members(self, group: DeviceGroup) -> DeviceGroup:
        members = sorted(d for g, d in self._live().device_members if g == group.id)
        return replace(group, members=tuple(members))

    def add_device_group(self, group: DeviceGroup, *, actor: str) -> DeviceGroup:
        with self._lock:
            at = common.now(self._clock)
            group = rules.check_group(group, actor, at)
            state = self._live()
            if group.id in state.device_groups:
                raise common.already_exists("device group", group.id)
            for device_id in group.members:
                self._device(device_id)
            state.device_groups[group.id] = replace(group, members=())
            state.device_members |= {(group.id, d) for d in group.members}
            details = {"added": list(group.members)}
            self._audit_only(at, actor, "device_group.add", "device_group", group.id, details)
            return group

    def get_device_group(self, group_id: str) -> DeviceGroup:
        with self._lock:
            return self._with_members(self._group(group_id))

    def list_device_groups(self) -> list[DeviceGroup]:
        with self._lock:
            groups = sorted(self._live().device_groups.values(), key=lambda g: g.id)
            return [self._with_members(g) for g in groups]

    def delete_device_group(self, group_id: str, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            self._group(group_id)
            state = self._live()
            del state.device_groups[group_id]
            state.device_members = {(g, d) for g, d in state.device_members if g != group_id}
            self._audit_only(at, actor, "device_group.delete", "device_group", group_id, {})

    def add_device_members(
        self, group_id: str, device_ids: Sequence[str], *, actor: str
    ) -> DeviceGroup:
        common.check_id(actor, "actor")
        wanted = rules.check_member_ids(device_ids)
        with self._lock:
            at = common.now(self._clock)
            group = self._group(group_id)
            unknown = sorted({d for d in wanted if d not in self._live().devices})
            if unknown:
                raise NotFoundError(f"device `{unknown[0]}` not found", devices=unknown)
            state = self._live()
            added = sorted({d for d in wanted if (group_id, d) not in state.device_members})
            state.device_members |= {(group_id, d) for d in added}
            details = {"added": added}
            action = "device_group.add_members"
            self._audit_only(at, actor, action, "device_group", group_id, details)
            return self._with_members(group)

    def remove_device_members(
        self, group_id: str, device_ids: Sequence[str], *, actor: str
    ) -> DeviceGroup:
        common.check_id(actor, "actor")
        wanted = set(rules.check_member_ids(device_ids))
        with self._lock:
            at = common.now(self._clock)
            group = self._group(group_id)
            state = self._live()
            removed = sorted(d for g, d in state.device_members if g == group_id and d in wanted)
            state.device_members -= {(group_id, d) for d in removed}
            details = {"removed": removed}
            action = "device_group.remove_members"
            self._audit_only(at, actor, action, "device_group", group_id, details)
            return self._with_members(group)

    def device_groups_of(self, device_id: str) -> list[str]:
        with self._lock:
            self._device(device_id)
            return sorted(g for g, d in self._live().device_members if d == device_id)

    # -- network resources

    def put_network_resource(
        self,
        resource: NetworkResource,
        *,
        actor: str,
        action: str,
        details: Mapping[str, Any] | None = None,
    ) -> NetworkResource:
        common.check_id(action, "action")
        with self._lock:
            at = common.now(self._clock)
            resource = rules.check_resource(resource, actor, at)
            self._device(resource.device_id)
            state = self._live()
            key = (resource.kind, resource.remote_id)
            known = state.resources.get(key)
            hashed = resource.sink_token_hash
            if hashed and any(
                r.sink_token_hash == hashed for k, r in state.resources.items() if k != key
            ):
                raise AlreadyExistsError("this sink credential belongs to another resource")
            resource = replace(
                resource,
                created_at=known.created_at if known else at,
                created_by=known.created_by if known else actor,
            )
            state.resources[key] = resource
            audited = rules.resource_details(resource, details)
            self._audit_only(at, actor, action, "device", resource.device_id, audited)
            return _out_resource(resource)

    def record_device_outcomes(
        self,
        *,
        actor: str,
        resources: Sequence[tuple[NetworkResource, str, Mapping[str, Any]]] = (),
        audits: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
    ) -> None:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            checked = [(rules.check_resource(r, actor, at), a, d) for r, a, d in resources]
            state = self._live()
            keys = [(r.kind, r.remote_id) for r, _, _ in checked]
            hashes = [r.sink_token_hash for r, _, _ in checked if r.sink_token_hash]
            taken = {r.sink_token_hash for r in state.resources.values()}
            if any(k in state.resources for k in keys) or len(set(keys)) < len(keys):
                raise AlreadyExistsError("a network resource of the batch is recorded already")
            if len(set(hashes)) < len(hashes) or taken & set(hashes):
                raise AlreadyExistsError(
                    "a sink credential of the batch belongs to another resource"
                )
            for device_id in {r.device_id for r, _, _ in checked} | {d for d, _, _ in audits}:
                self._device(device_id)
            details = [(a, common.check_audit(actor, a, "device", d, x)) for d, a, x in audits]
            for resource, action, audited in checked:
                resource = replace(resource, created_at=at, created_by=actor)
                state.resources[(resource.kind, resource.remote_id)] = resource
                about = rules.resource_details(resource, audited)
                self._audit_only(at, actor, action, "device", resource.device_id, about)
            for (device_id, _, _), (action, audited) in zip(audits, details, strict=True):
                self._audit_only(at, actor, action, "device", device_id, audited)

    def get_network_resource(self, kind: str, remote_id: str) -> NetworkResource:
        with self._lock:
            found = self._live().resources.get((kind, remote_id))
        if found is None:
            raise common.not_found(kind.replace("_", " "), remote_id)
        return _out_resource(found)

    def find_network_resource(self, sink_token_hash: str) -> NetworkResource:
        with self._lock:
            for resource in self._live().resources.values():
                if sink_token_hash and resource.sink_token_hash == sink_token_hash:
                    return _out_resource(resource)
        raise NotFoundError("no network resource holds this sink credential")

    def list_network_resources(
        self, *, device_id: str | None = None, kind: str | None = None
    ) -> list[NetworkResource]:
        with self._lock:
            found = [
                r
                for r in self._live().resources.values()
                if (device_id is None or r.device_id == device_id)
                and (kind is None or r.kind == kind)
            ]
        found.sort(key=lambda r: (r.device_id, r.kind, r.remote_id))
        return [_out_resource(r) for r in found]

    def delete_network_resource(
        self, kind: str, remote_id: str, *, actor: str, details: Mapping[str, Any] | None = None
    ) -> None:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            state = self._live()
            found = state.resources.pop((kind, remote_id), None)
            if found is None:
                raise common.not_found(kind.replace("_", " "), remote_id)
            audited = rules.resource_details(found, details)
            self._audit_only(at, actor, f"{kind}.forget", "device", found.device_id, audited)

    # -- status

    def put_device_status(self, status: DeviceStatus, *, actor: str) -> DeviceStatus:
        with self._lock:
            at = common.now(self._clock)
            status = rules.check_status(status, actor, at)
            self._device(status.device_id)
            self._live().statuses[status.device_id] = status
            details = rules.status_details(status)
            self._audit_only(at, actor, "device.status", "device", status.device_id, details)
            return status

    def get_device_status(self, device_id: str) -> DeviceStatus:
        with self._lock:
            self._device(device_id)
            found = self._live().statuses.get(device_id)
        if found is None:
            raise NotFoundError(f"no connectivity status of device `{device_id}` yet")
        return found

    def list_device_status(self) -> list[DeviceStatus]:
        with self._lock:
            return sorted(self._live().statuses.values(), key=lambda s: s.device_id)
