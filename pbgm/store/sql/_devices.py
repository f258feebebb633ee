"""Devices, device groups, network resources and device status in the SQL store.

Audited in the same transaction as the change; the revision is not bumped (device
facts are read fresh by each decision, `pbgm.devices`). A membership change locks
its group's row first, so two concurrent changes of one group are serialised (on
SQLite the write transaction already serialises writers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from pbgm.errors import AlreadyExistsError, NotFoundError
from pbgm.store import _common as common
from pbgm.store import _device_rules as rules
from pbgm.store.base import Device, DeviceGroup, DeviceStatus, NetworkResource
from pbgm.store.sql._base import SqlBase
from pbgm.store.sql.tables import (
    AuditRow,
    DeviceGroupRow,
    DeviceMemberRow,
    DeviceRow,
    DeviceStatusRow,
    NetworkResourceRow,
)


def _to_device(row: DeviceRow) -> Device:
    return Device(
        id=row.id,
        identifiers=row.identifiers,
        owner=row.owner,
        asset_id=row.asset_id,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _fill_device(row: DeviceRow, device: Device) -> None:
    keys = rules.unique_keys(device)
    row.identifiers = dict(device.identifiers)
    row.phone_number = keys.get("phoneNumber")
    row.network_access_identifier = keys.get("networkAccessIdentifier")
    row.owner, row.asset_id, row.description = device.owner, device.asset_id, device.description
    row.updated_at = device.updated_at  # type: ignore[assignment]


def _to_resource(row: NetworkResourceRow) -> NetworkResource:
    return NetworkResource(
        kind=row.kind,
        remote_id=row.remote_id,
        device_id=row.device_id,
        status=row.status,
        qos_profile=row.qos_profile,
        duration_s=row.duration_s,
        started_at=row.started_at,
        expires_at=row.expires_at,
        sink_token_hash=row.sink_token_hash,
        details=row.details,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _resource_values(resource: NetworkResource, actor: str, at: datetime) -> dict[str, Any]:
    values = {name: getattr(resource, name) for name in RESOURCE_COLUMNS}
    values.update(created_by=actor, created_at=at, updated_at=at)
    return values


def _audit_values(
    at: datetime, actor: str, action: str, device_id: str, details: Any
) -> dict[str, Any]:
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "object_type": "device",
        "object_id": device_id,
        "details": common.to_json(details),
    }


RESOURCE_COLUMNS = (
    "kind",
    "remote_id",
    "device_id",
    "status",
    "qos_profile",
    "duration_s",
    "started_at",
    "expires_at",
    "sink_token_hash",
    "details",
)


def _to_status(row: DeviceStatusRow) -> DeviceStatus:
    return DeviceStatus(
        device_id=row.device_id,
        reachable=row.reachable,
        connectivity=tuple(row.connectivity),
        roaming=row.roaming,
        country_code=row.country_code,
        network_type=row.network_type,
        last_status_time=row.last_status_time,
        source=row.source,
        updated_at=row.updated_at,
    )


class SqlDevices(SqlBase):
    """Device operations of `SqlStore`."""

    # -- devices

    @staticmethod
    def _device_row(session: Session, device_id: str) -> DeviceRow:
        row = session.get(DeviceRow, device_id)
        if row is None:
            raise common.not_found("device", device_id)
        return row

    @staticmethod
    def _check_unique(session: Session, device: Device) -> None:
        columns = {
            "phoneNumber": DeviceRow.phone_number,
            "networkAccessIdentifier": DeviceRow.network_access_identifier,
        }
        for name, value in rules.unique_keys(device).items():
            query = select(DeviceRow.id).where(columns[name] == value, DeviceRow.id != device.id)
            other = session.scalar(query)
            if other is not None:
                raise AlreadyExistsError(f"`{name}` `{value}` is taken by device `{other}`")

    def add_device(self, device: Device, *, actor: str) -> Device:
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            device = rules.check_device(device, actor, at)
            if session.get(DeviceRow, device.id) is not None:
                raise common.already_exists("device", device.id)
            self._check_unique(session, device)
            row = DeviceRow(id=device.id, created_at=at)
            _fill_device(row, device)
            session.add(row)
            self._audit(session, at, actor, "device.add", "device", device.id, {})
            return device

    def update_device(self, device: Device, *, actor: str) -> Device:
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            device = rules.check_device(device, actor, at)
            row = self._device_row(session, device.id)
            self._check_unique(session, device)
            _fill_device(row, device)
            self._audit(session, at, actor, "device.update", "device", device.id, {})
            session.flush()
            return _to_device(row)

    def get_device(self, device_id: str) -> Device:
        with self._tx(write=False) as session:
            return _to_device(self._device_row(session, device_id))

    def list_devices(
        self, *, group: str | None = None, asset_id: str | None = None
    ) -> list[Device]:
        query = select(DeviceRow).order_by(DeviceRow.id)
        if group is not None:
            query = query.join(DeviceMemberRow, DeviceMemberRow.device_id == DeviceRow.id).where(
                DeviceMemberRow.group_id == group
            )
        if asset_id is not None:
            query = query.where(DeviceRow.asset_id == asset_id)
        with self._tx(write=False) as session:
            if group is not None:
                self._group_row(session, group)
            return [_to_device(row) for row in session.scalars(query)]

    def delete_device(self, device_id: str, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            row = self._device_row(session, device_id)
            for table in (DeviceMemberRow, NetworkResourceRow, DeviceStatusRow):
                session.execute(delete(table).where(table.device_id == device_id))
            session.delete(row)
            self._audit(session, at, actor, "device.delete", "device", device_id, {})

    # -- groups

    @staticmethod
    def _group_row(session: Session, group_id: str, *, lock: bool = False) -> DeviceGroupRow:
        query = select(DeviceGroupRow).where(DeviceGroupRow.id == group_id)
        row = session.scalars(query.with_for_update() if lock else query).first()
        if row is None:
            raise common.not_found("device group", group_id)
        return row

    @staticmethod
    def _members(session: Session, group_id: str) -> tuple[str, ...]:
        query = (
            select(DeviceMemberRow.device_id)
            .where(DeviceMemberRow.group_id == group_id)
            .order_by(DeviceMemberRow.device_id)
        )
        return tuple(session.scalars(query))

    def _group_of(self, session: Session, row: DeviceGroupRow) -> DeviceGroup:
        return DeviceGroup(row.id, row.description, self._members(session, row.id), row.created_at)

    @staticmethod
    def _unknown_devices(session: Session, device_ids: Sequence[str]) -> list[str]:
        wanted = set(device_ids)
        known: set[str] = set()
        listed = sorted(wanted)
        for start in range(0, len(listed), 500):  # bounded IN lists
            chunk = listed[start : start + 500]
            known |= set(session.scalars(select(DeviceRow.id).where(DeviceRow.id.in_(chunk))))
        return sorted(wanted - known)

    def add_device_group(self, group: DeviceGroup, *, actor: str) -> DeviceGroup:
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            group = rules.check_group(group, actor, at)
            if session.get(DeviceGroupRow, group.id) is not None:
                raise common.already_exists("device group", group.id)
            unknown = self._unknown_devices(session, group.members)
            if unknown:
                raise NotFoundError(f"device `{unknown[0]}` not found", devices=unknown)
            session.add(DeviceGroupRow(id=group.id, description=group.description, created_at=at))
            session.flush()
            session.add_all(DeviceMemberRow(group_id=group.id, device_id=d) for d in group.members)
            details = {"added": list(group.members)}
            self._audit(session, at, actor, "device_group.add", "device_group", group.id, details)
            return group

    def get_device_group(self, group_id: str) -> DeviceGroup:
        with self._tx(write=False) as session:
            return self._group_of(session, self._group_row(session, group_id))

    def list_device_groups(self) -> list[DeviceGroup]:
        with self._tx(write=False) as session:
            rows = session.scalars(select(DeviceGroupRow).order_by(DeviceGroupRow.id)).all()
            members: dict[str, list[str]] = {row.id: [] for row in rows}
            query = select(DeviceMemberRow).order_by(DeviceMemberRow.device_id)
            for member in session.scalars(query):
                members[member.group_id].append(member.device_id)
            return [
                DeviceGroup(r.id, r.description, tuple(members[r.id]), r.created_at) for r in rows
            ]

    def delete_device_group(self, group_id: str, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            row = self._group_row(session, group_id, lock=True)
            session.execute(delete(DeviceMemberRow).where(DeviceMemberRow.group_id == group_id))
            session.delete(row)
            self._audit(session, at, actor, "device_group.delete", "device_group", group_id, {})

    def add_device_members(
        self, group_id: str, device_ids: Sequence[str], *, actor: str
    ) -> DeviceGroup:
        common.check_id(actor, "actor")
        wanted = rules.check_member_ids(device_ids)
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            row = self._group_row(session, group_id, lock=True)
            unknown = self._unknown_devices(session, wanted)
            if unknown:
                raise NotFoundError(f"device `{unknown[0]}` not found", devices=unknown)
            present = set(self._members(session, group_id))
            added = sorted(set(wanted) - present)
            session.add_all(DeviceMemberRow(group_id=group_id, device_id=d) for d in added)
            details = {"added": added}
            action = "device_group.add_members"
            self._audit(session, at, actor, action, "device_group", group_id, details)
            session.flush()
            return self._group_of(session, row)

    def remove_device_members(
        self, group_id: str, device_ids: Sequence[str], *, actor: str
    ) -> DeviceGroup:
        common.check_id(actor, "actor")
        wanted = set(rules.check_member_ids(device_ids))
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            row = self._group_row(session, group_id, lock=True)
            removed = sorted(set(self._members(session, group_id)) & wanted)
            for start in range(0, len(removed), 500):
                chunk = removed[start : start + 500]
                session.execute(
                    delete(DeviceMemberRow).where(
                        DeviceMemberRow.group_id == group_id, DeviceMemberRow.device_id.in_(chunk)
                    )
                )
            details = {"removed": removed}
            action = "device_group.remove_members"
            self._audit(session, at, actor, action, "device_group", group_id, details)
            session.flush()
            return self._group_of(session, row)

    def device_groups_of(self, device_id: str) -> list[str]:
        """One query (a group action asks it once per device): the device, joined with
        its memberships; no row at all means no such device."""
        query = (
            select(DeviceRow.id, DeviceMemberRow.group_id)
            .outerjoin(DeviceMemberRow, DeviceMemberRow.device_id == DeviceRow.id)
            .where(DeviceRow.id == device_id)
            .order_by(DeviceMemberRow.group_id)
        )
        with self._tx(write=False) as session:
            rows = session.execute(query).all()
        if not rows:
            raise common.not_found("device", device_id)
        return [group for _, group in rows if group is not None]

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
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            resource = rules.check_resource(resource, actor, at)
            self._device_row(session, resource.device_id)
            row = session.get(NetworkResourceRow, (resource.kind, resource.remote_id))
            if row is None:
                key = {"kind": resource.kind, "remote_id": resource.remote_id}
                row = NetworkResourceRow(**key, created_by=actor, created_at=at)
                session.add(row)
            for name in (
                "device_id", "status", "qos_profile", "duration_s", "started_at", "expires_at",
                "sink_token_hash", "details", "updated_at",
            ):  # fmt: skip
                setattr(row, name, getattr(resource, name))
            audited = rules.resource_details(resource, details)
            self._audit(session, at, actor, action, "device", resource.device_id, audited)
            session.flush()
            return _to_resource(row)

    def record_device_outcomes(
        self,
        *,
        actor: str,
        resources: Sequence[tuple[NetworkResource, str, Mapping[str, Any]]] = (),
        audits: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
    ) -> None:
        """Two multi-row INSERTs whatever the batch's size: a group action's outcomes
        cost one transaction, not a few statements per device. The foreign key refuses
        an unknown device, the primary key a resource recorded already."""
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            checked = [(rules.check_resource(r, actor, at), a, d) for r, a, d in resources]
            rows = [_resource_values(r, actor, at) for r, _, _ in checked]
            audit_rows = [
                _audit_values(at, actor, a, r.device_id, rules.resource_details(r, d))
                for r, a, d in checked
            ]
            audit_rows += [
                _audit_values(
                    at, actor, a, device_id, common.check_audit(actor, a, "device", device_id, d)
                )
                for device_id, a, d in audits
            ]
            if audits:
                self._known_devices(session, {d for d, _, _ in audits})
            if rows:
                session.execute(insert(NetworkResourceRow), rows)
            if audit_rows:
                session.execute(insert(AuditRow), audit_rows)

    def _known_devices(self, session: Session, device_ids: set[str]) -> None:
        unknown = self._unknown_devices(session, sorted(device_ids))
        if unknown:
            raise NotFoundError(f"device `{unknown[0]}` not found", devices=unknown)

    def get_network_resource(self, kind: str, remote_id: str) -> NetworkResource:
        with self._tx(write=False) as session:
            row = session.get(NetworkResourceRow, (kind, remote_id))
            if row is None:
                raise common.not_found(kind.replace("_", " "), remote_id)
            return _to_resource(row)

    def find_network_resource(self, sink_token_hash: str) -> NetworkResource:
        query = select(NetworkResourceRow).where(
            NetworkResourceRow.sink_token_hash == sink_token_hash
        )
        with self._tx(write=False) as session:
            row = session.scalars(query).first() if sink_token_hash else None
            if row is None:
                raise NotFoundError("no network resource holds this sink credential")
            return _to_resource(row)

    def list_network_resources(
        self, *, device_id: str | None = None, kind: str | None = None
    ) -> list[NetworkResource]:
        query = select(NetworkResourceRow).order_by(
            NetworkResourceRow.device_id, NetworkResourceRow.kind, NetworkResourceRow.remote_id
        )
        if device_id is not None:
            query = query.where(NetworkResourceRow.device_id == device_id)
        if kind is not None:
            query = query.where(NetworkResourceRow.kind == kind)
        with self._tx(write=False) as session:
            return [_to_resource(row) for row in session.scalars(query)]

    def delete_network_resource(
        self, kind: str, remote_id: str, *, actor: str, details: Mapping[str, Any] | None = None
    ) -> None:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            row = session.get(NetworkResourceRow, (kind, remote_id))
            if row is None:
                raise common.not_found(kind.replace("_", " "), remote_id)
            audited = rules.resource_details(_to_resource(row), details)
            session.delete(row)
            self._audit(session, at, actor, f"{kind}.forget", "device", row.device_id, audited)

    # -- status

    def put_device_status(self, status: DeviceStatus, *, actor: str) -> DeviceStatus:
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            status = rules.check_status(status, actor, at)
            self._device_row(session, status.device_id)
            row = session.get(DeviceStatusRow, status.device_id)
            if row is None:
                row = DeviceStatusRow(device_id=status.device_id)
                session.add(row)
            for name in (
                "reachable", "roaming", "country_code", "network_type", "last_status_time",
                "source", "updated_at",
            ):  # fmt: skip
                setattr(row, name, getattr(status, name))
            row.connectivity = list(status.connectivity)
            details = rules.status_details(status)
            self._audit(session, at, actor, "device.status", "device", status.device_id, details)
            return status

    def get_device_status(self, device_id: str) -> DeviceStatus:
        with self._tx(write=False) as session:
            self._device_row(session, device_id)
            row = session.get(DeviceStatusRow, device_id)
            if row is None:
                raise NotFoundError(f"no connectivity status of device `{device_id}` yet")
            return _to_status(row)

    def list_device_status(self) -> list[DeviceStatus]:
        query = select(DeviceStatusRow).order_by(DeviceStatusRow.device_id)
        with self._tx(write=False) as session:
            return [_to_status(row) for row in session.scalars(query)]
