"""The errors pbgm raises: one root, a few classes that carry data.

Every error has a stable `code` (snake_case, part of the public contract: the
REST API and the CLI map codes, never class names) and a message written for
the person who has to fix the input: lowercase, no final period, user input in
backticks. HTTP statuses are mapped in `pbgm.api.errors`, exit codes in
`pbgm.cli`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, located by a JSON path such as `$.rules[0].effect`."""

    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message}


class PbgmError(Exception):
    """Root of pbgm's errors."""

    code = "pbgm_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        out.update(self.details)
        return out


class InvalidInputError(PbgmError):
    """Input that cannot be read at all: malformed JSON/YAML, a bad base64 id,
    an oversized document, an unknown format."""

    code = "invalid_input"


class MalformedIdError(InvalidInputError):
    code = "malformed_id"


class ValidationError(PbgmError):
    """Input that was read but breaks the rules; lists every problem found."""

    code = "validation_failed"

    def __init__(self, problems: Iterable[Problem], message: str | None = None) -> None:
        self.problems = tuple(problems)
        if message is None:
            first = self.problems[0] if self.problems else None
            message = (
                f"{len(self.problems)} problem(s), first at `{first.path}`: {first.message}"
                if first
                else "validation failed"
            )
        super().__init__(message)

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out["problems"] = [p.as_dict() for p in self.problems]
        return out


class NotFoundError(PbgmError):
    """The thing does not exist, or the caller may not see it (the two look the same)."""

    code = "not_found"


class AlreadyExistsError(PbgmError):
    code = "already_exists"


class ConflictError(PbgmError):
    """An update named a stale version; nothing was changed."""

    code = "version_conflict"


class PermissionDeniedError(PbgmError):
    code = "permission_denied"


class AuthenticationError(PbgmError):
    code = "unauthenticated"


class UnsupportedOperationError(PbgmError):
    """The store or adapter does not implement this operation."""

    code = "unsupported_operation"


class ConfigurationError(PbgmError):
    code = "configuration_error"


class StoreUnavailableError(PbgmError):
    """The repository cannot be reached (database down, file locked)."""

    code = "store_unavailable"
