"""`DeviceManager`: device actions one at a time or fanned out over a group.

**One device** (`act`): the device and its groups are read, the action decided and,
if allowed, carried to the network; the outcome is recorded (network resource,
status, audit entry with the decision) in one transaction, then a denial or a
failure is raised (`PermissionDeniedError`, `NetworkError`).

**A group** (`act_on_group`): CAMARA has no groups, so one call per member, at most
`concurrency` in flight. The result names every member (`GroupResult`: `all`,
`some` or `none` succeeded; which failed or were denied, and why). Outcomes are
recorded as they come, `batch` per transaction, so a long action keeps what it did
even if it is stopped half way.

**Membership changes while a group action runs** (the defined outcome): the action
acts on the members of the group **when it starts** (the result lists exactly
those). Just before its call, each member is checked again: a device removed from
the group meanwhile is `skipped` (`left_group`) and nothing is done to it; a device
added meanwhile is not part of this action (run it again to include it). Each
decision uses the device's groups at the moment of its call, so a permission that
came from the group no longer applies to a device that left it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from pbgm.devices._actions import POLICY_ACTION, DeviceActions
from pbgm.devices._context import DeviceSettings, NetworkHolder
from pbgm.devices._decide import DeviceDecisions
from pbgm.devices._results import FAILED, SKIPPED, DeviceResult, GroupResult, Outcome, ordered
from pbgm.errors import InvalidInputError, NotFoundError, PbgmError
from pbgm.model import Clock, utc_now
from pbgm.network import Network
from pbgm.store.base import Device, Store

log = logging.getLogger(__name__)

GROUP_ACTIONS = ("start", "extend", "release", "provision", "deprovision", "refresh", "subscribe")


class Recorder:
    """Writes outcomes: a batch in one transaction; if that fails, each on its own, so
    that one outcome the repository refuses (its device deleted meanwhile) does not
    lose the others; the decision is audited whatever happens to the rest."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """New resources and plain audit entries go in bulk (`record_device_outcomes`),
        the rest (updates, forgetting, status) one call each, all in one transaction."""
        if not outcomes:
            return
        try:
            plain = [o for o in outcomes if _plain(o)]
            with self.store.atomic() as view:
                for actor in sorted({o.actor for o in plain}):
                    _bulk(view, [o for o in plain if o.actor == actor])
                for outcome in outcomes:
                    if not _plain(outcome):
                        _apply(view, outcome)
        except PbgmError:
            log.warning("recording %d device outcomes together failed; one by one", len(outcomes))
            for outcome in outcomes:
                self._alone(outcome)

    def _alone(self, outcome: Outcome) -> None:
        try:
            with self.store.atomic() as view:
                _apply(view, outcome)
        except PbgmError as error:
            log.error(
                "could not record %s on device `%s` (%s); auditing the decision only",
                outcome.action,
                outcome.result.device_id,
                error.code,
            )
            _audit(self.store, outcome, {"recorded": False, "record_error": error.code})


def _audit(store: Store, outcome: Outcome, extra: Mapping[str, Any] | None = None) -> None:
    store.record_audit(
        actor=outcome.actor,
        action=f"device.{outcome.action}",
        object_type="device",
        object_id=outcome.result.device_id,
        details={**outcome.audit, **(extra or {})},
    )


def _plain(outcome: Outcome) -> bool:
    """An outcome that only adds resources or audit entries (recorded in bulk)."""
    return outcome.forget is None and outcome.status is None and not outcome.update


def _bulk(store: Store, outcomes: Sequence[Outcome]) -> None:
    resources = [
        (resource, f"device.{o.action}", o.audit) for o in outcomes for resource in o.resources
    ]
    audits = [
        (o.result.device_id, f"device.{o.action}", o.audit) for o in outcomes if not o.resources
    ]
    store.record_device_outcomes(actor=outcomes[0].actor, resources=resources, audits=audits)


def _apply(store: Store, outcome: Outcome) -> None:
    audited = False
    for resource in outcome.resources:
        action = f"device.{outcome.action}"
        store.put_network_resource(
            resource, actor=outcome.actor, action=action, details=outcome.audit
        )
        audited = True
    if outcome.forget is not None:
        kind, remote_id = outcome.forget
        try:
            details = {**outcome.audit, "action": outcome.action}
            store.delete_network_resource(kind, remote_id, actor=outcome.actor, details=details)
            audited = True
        except NotFoundError:
            pass
    if outcome.status is not None:
        store.put_device_status(outcome.status, actor=outcome.actor)
    if not audited:
        _audit(store, outcome)


class DeviceManager:
    """Device actions under policy (module docstring)."""

    def __init__(
        self,
        store: Store,
        network: NetworkHolder | Network | None = None,
        *,
        settings: DeviceSettings | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings or DeviceSettings()
        self.network = network if isinstance(network, NetworkHolder) else NetworkHolder(network)
        self.decisions = DeviceDecisions(
            store, policy_group=self.settings.policy_group, clock=clock
        )
        self.actions = DeviceActions(store, self.network, self.decisions, self.settings, clock)
        self.recorder = Recorder(store)

    def close(self) -> None:
        self.network.close()

    # -- one device

    def act(self, action: str, actor: str, device_id: str, **params: Any) -> DeviceResult:
        """`action` (`GROUP_ACTIONS`) on one device; raises a denial or a failure."""
        _check_action(action)
        device = self.store.get_device(device_id)
        groups = tuple(self.store.device_groups_of(device_id))
        self.decisions.refresh()
        outcome = self.actions.run(action, actor, device, groups, params)
        self.recorder.record([outcome])
        if outcome.error is not None:
            raise outcome.error
        return outcome.result

    # -- a group

    def act_on_group(self, action: str, actor: str, group_id: str, **params: Any) -> GroupResult:
        """`action` on every member of `group_id` when it starts (module docstring)."""
        _check_action(action)
        members = self.store.get_device_group(group_id).members
        devices = {d.id: d for d in self.store.list_devices(group=group_id)}
        self.decisions.refresh()
        if members:
            self.network.get()  # not configured: say so once, before any device
        results: list[DeviceResult] = []
        pending: list[Outcome] = []
        workers = max(1, min(self.settings.concurrency, len(members)))
        with ThreadPoolExecutor(workers, thread_name_prefix="pbgm-device") as pool:
            futures = [
                pool.submit(self._member, action, actor, group_id, m, devices.get(m), params)
                for m in members
            ]
            for future in as_completed(futures):
                outcome = future.result()
                results.append(outcome.result)
                pending.append(outcome)
                if len(pending) >= self.settings.batch:
                    self.recorder.record(pending)
                    pending = []
        self.recorder.record(pending)
        return GroupResult(group_id, action, ordered(results, members))

    def _member(
        self,
        action: str,
        actor: str,
        group_id: str,
        device_id: str,
        device: Device | None,
        params: Mapping[str, Any],
    ) -> Outcome:
        """One member's outcome; never raises (a group reports every member)."""
        try:
            groups = tuple(self.store.device_groups_of(device_id))
            if group_id not in groups:
                message = f"device `{device_id}` left group `{group_id}` during the action"
                return _not_done(action, actor, device_id, SKIPPED, "left_group", message)
            device = device or self.store.get_device(device_id)
            return self.actions.run(action, actor, device, groups, params, group=group_id)
        except NotFoundError:
            message = f"device `{device_id}` was deleted during the action"
            return _not_done(action, actor, device_id, SKIPPED, "not_found", message)
        except PbgmError as error:
            return _not_done(action, actor, device_id, FAILED, error.code, error.message)
        except Exception:
            log.exception("%s on device `%s` failed", action, device_id)
            message = "an unexpected error; see the server log"
            return _not_done(action, actor, device_id, FAILED, "internal_error", message)


def _not_done(
    action: str, actor: str, device_id: str, status: str, code: str, message: str
) -> Outcome:
    result = DeviceResult(device_id, status, code, message)
    return Outcome(result, POLICY_ACTION[action], actor, {"result": status, "reason": code})


def _check_action(action: str) -> None:
    if action not in GROUP_ACTIONS:
        listed = ", ".join(f"`{a}`" for a in GROUP_ACTIONS)
        raise InvalidInputError(f"unknown device action `{action}`: one of {listed}")
