"""`<PolicyIdReference>` and `<PolicySetIdReference>`: their version constraints (§5.10,
§5.11) and the `Repository` protocol through which the reader finds what they name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pbgm.model import Policy
from pbgm.xacml.safexml import Element

DEFAULT_VERSION = "1.0"


@dataclass(frozen=True, slots=True)
class Reference:
    """A `<PolicyIdReference>` or `<PolicySetIdReference>` with its version constraints."""

    kind: str  # "Policy" or "PolicySet"
    id: str
    version: str | None = None
    earliest: str | None = None
    latest: str | None = None

    def admits(self, version: str) -> bool:
        """Whether a policy of `version` satisfies the constraints (§5.10, §5.11)."""
        if self.version is not None and not version_matches(version, self.version):
            return False
        if self.earliest is not None and _compare(version, self.earliest) < 0:
            return False
        return self.latest is None or _compare(version, self.latest) <= 0


def version_matches(version: str, pattern: str) -> bool:
    """`VersionMatchType`: `*` stands for any one number, a final `+` for any numbers."""
    parts, wanted = version.split("."), pattern.split(".")
    for i, want in enumerate(wanted):
        if want == "+" and i == len(wanted) - 1:
            return True
        if i >= len(parts) or (want != "*" and want != parts[i]):
            return False
    return len(parts) == len(wanted)


def _compare(version: str, pattern: str) -> int:
    """-1, 0 or 1 as `version` is before, at or after `pattern` (wildcards match)."""
    parts, wanted = version.split("."), pattern.split(".")
    for i, want in enumerate(wanted):
        if want == "+":
            return 0
        if i >= len(parts):
            return -1
        if want == "*":
            continue
        a, b = int(parts[i]), int(want)
        if a != b:
            return -1 if a < b else 1
    return 1 if len(parts) > len(wanted) else 0


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


class Repository(Protocol):
    """Where references are resolved: a directory of XACML files, or the store."""

    def candidates(self, kind: str, policy_id: str) -> list[tuple[str, Element | Policy]]:
        """(version, element or already-read policy) of each `kind` with `policy_id`."""
        ...


class NoRepository:
    def candidates(self, kind: str, policy_id: str) -> list[tuple[str, Element | Policy]]:
        return []
