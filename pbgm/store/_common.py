"""Input rules every part of both stores shares, so that they behave the same.

Ids, free text, JSON documents, row numbers, times, audit entries and the
not-found and already-exists errors are checked here rather than in each store:
the contract suite then only has to prove that each store calls them, and the
memory and SQL stores cannot drift apart on what they accept. The rules of one
kind of record live beside this module: `_policy_rules`, `_principal_rules` and
`_flexoffer_rules`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pbgm.errors import AlreadyExistsError, ConfigurationError, InvalidInputError, NotFoundError
from pbgm.model import Clock
from pbgm.policy import json_strings, thaw
from pbgm.store.base import LOGS, MAX_ROW_ID

MAX_ID_LENGTH = 255
MAX_AUDIT_LIMIT = 10_000
MAX_ROW_NUMBER = MAX_ROW_ID
"""The largest version number, grant id or audit id: their columns are INTEGER, which
PostgreSQL stores in 4 bytes (a larger number bound to them is a database error)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_id(value: Any, what: str) -> str:
    """An id or name: a non-empty string of at most 255 characters without NUL.

    Anything else is stored verbatim (unicode, quotes, SQL-looking text): the SQL
    store only ever binds ids as parameters.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInputError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if "\x00" in value:
        raise InvalidInputError(f"{what} must not contain a NUL character")
    return value


def check_text(value: Any, what: str) -> str:
    """Free text (a reason, a description): any string without NUL."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string")
    if "\x00" in value:
        raise InvalidInputError(f"{what} must not contain a NUL character")
    return value


def to_json(value: Any) -> Any:
    """A private JSON copy of `value` (mappings become dicts, tuples lists).

    Refuses what one of the databases could not store: NaN or infinity, NUL
    characters, and values JSON cannot represent.
    """
    return json_copy(value)[0]


def json_copy(value: Any) -> tuple[Any, str]:
    """`to_json`, and the copy written out as JSON text (what a bulk write stores).

    Plain dicts and lists are written out as they are; anything else (read-only
    mappings, sets) is thawed first.
    """
    try:
        try:
            text = json.dumps(value, allow_nan=False)
        except TypeError:
            text = json.dumps(thaw(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"the document is not storable as JSON: {exc}") from None
    copy = json.loads(text)
    # `json.dumps` writes NUL as `\u0000`; without that text there is none to look for
    if "\\u0000" in text and any("\x00" in s for s in json_strings(copy)):
        raise InvalidInputError("a document must not contain a NUL character")
    return copy, text


def positive_int(value: Any) -> int | None:
    """`value` as a version number or grant id, or None if it cannot be one."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ROW_NUMBER:
        return value
    return None


def check_row_number(value: Any, what: str) -> int:
    """A row number given to look up or page by (`before_id`): within the column's range."""
    if positive_int(value) is None:
        raise InvalidInputError(
            f"{what} must be a whole number from 1 to {MAX_ROW_NUMBER}", code="out_of_range"
        )
    return int(value)


def now(clock: Clock) -> datetime:
    """The clock's time in UTC; a naive time is a configuration error."""
    moment = clock()
    if moment.tzinfo is None:
        raise ConfigurationError("the store clock must return timezone-aware times")
    return moment.astimezone(UTC)


def as_utc(moment: datetime | None, default: datetime) -> datetime:
    """A given creation time (kept on import) in UTC, or `default`."""
    if moment is None:
        return default
    if moment.tzinfo is None:
        raise InvalidInputError("times must be timezone-aware")
    return moment.astimezone(UTC)


def check_audit(
    actor: str, action: str, object_type: str, object_id: str, details: Any
) -> dict[str, Any]:
    """Check an explicit audit entry; returns a JSON copy of its details."""
    check_id(actor, "actor")
    check_id(action, "action")
    check_id(object_type, "object type")
    check_id(object_id, "object id")
    copy = to_json(details or {})
    if not isinstance(copy, dict):
        raise InvalidInputError("audit details must be a JSON object")
    return copy


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_AUDIT_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_AUDIT_LIMIT}")
    return limit


def not_found(what: str, name: object) -> NotFoundError:
    return NotFoundError(f"{what} `{name}` not found")


def already_exists(what: str, name: object) -> AlreadyExistsError:
    return AlreadyExistsError(f"{what} `{name}` already exists")


def check_log(log: str) -> str:
    if log not in LOGS:
        raise InvalidInputError(f"unknown log `{log}`: use `audit` or `decisions`")
    return log
