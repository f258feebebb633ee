"""What a device action gives back: one device's result, a group's aggregate.

A `DeviceResult` is `done`, `denied` (by policy, before any call to the network),
`failed` (the network refused or failed; `code` is a `pbgm.network` code) or
`skipped` (the device left the group while the group action ran). A `GroupResult`
lists every member's result and says whether `all`, `some` or `none` of the
devices acted on succeeded, naming exactly which failed or were denied, and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pbgm.errors import PbgmError
from pbgm.store.base import DeviceStatus, NetworkResource

DONE, DENIED, FAILED, SKIPPED = "done", "denied", "failed", "skipped"


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class DeviceResult:
    """The result of one action on one device."""

    device_id: str
    status: str  # done | denied | failed | skipped
    code: str = ""
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def ok(self) -> bool:
        return self.status == DONE

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device_id, "status": self.status}
        if self.code:
            out.update(code=self.code, message=self.message)
        out.update(self.data)
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """A device result and what the repository must record of it: network resources
    to put, one to forget, a status, and the audit details of the decision and the call.
    `error` is the error a single-device call raises after recording."""

    result: DeviceResult
    action: str
    actor: str
    audit: Mapping[str, Any]
    resources: tuple[NetworkResource, ...] = ()
    forget: tuple[str, str] | None = None  # (kind, remote id)
    status: DeviceStatus | None = None
    error: PbgmError | None = None
    update: bool = False  # `resources` are new states of recorded ones (an extension)


@dataclass(frozen=True, slots=True)
class GroupResult:
    """A group action's aggregate (module docstring)."""

    group: str
    action: str
    results: tuple[DeviceResult, ...]

    def _with(self, status: str) -> list[DeviceResult]:
        return [r for r in self.results if r.status == status]

    @property
    def outcome(self) -> str:
        done = len(self._with(DONE))
        acted_on = len(self.results) - len(self._with(SKIPPED))
        if done == 0:
            return "none"
        return "all" if done == acted_on else "some"

    def as_json(self) -> dict[str, Any]:
        not_done = [r for r in self.results if r.status in (DENIED, FAILED)]
        return {
            "group": self.group,
            "action": self.action,
            "outcome": self.outcome,
            "members": len(self.results),
            "succeeded": [r.device_id for r in self._with(DONE)],
            "failed": [
                {"device": r.device_id, "status": r.status, "code": r.code, "message": r.message}
                for r in not_done
            ],
            "skipped": [
                {"device": r.device_id, "code": r.code, "message": r.message}
                for r in self._with(SKIPPED)
            ],
            "results": [r.as_json() for r in self.results],
        }


def ordered(results: Sequence[DeviceResult], members: Sequence[str]) -> tuple[DeviceResult, ...]:
    """Results in member order, whatever order the calls finished in."""
    by_id = {r.device_id: r for r in results}
    return tuple(by_id[m] for m in members if m in by_id)
