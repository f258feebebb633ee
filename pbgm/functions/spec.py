"""The spec of a function of the condition language (the registry's entries)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Signature:
    """The XACML signature of a function: the data type of each parameter and of the
    result, by short name (`string`, `dateTime`...), a bag written `string[]`, `*` for any
    type; when `variadic` the last parameter repeats. `function` names a function
    argument (of the higher-order functions)."""

    params: tuple[str, ...]
    returns: str
    variadic: bool = False

    def param(self, index: int) -> str:
        return self.params[min(index, len(self.params) - 1)]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function of the condition language.

    `params` gives the kind of each parameter; when `max_args` is None the last one repeats.
    Kinds: `boolean`, `number`, `string`, `value` (any scalar), `orderable`, `arithmetic`,
    `bag`, `date-time`, `time`, `timezone`, `weekdays`, `topic-filter` (checked when
    literal), `regex` and `function` (must be literals), `attribute` (an attribute reference),
    `dynamic` (anything; checked when evaluated).
    `impl` works on evaluated values; None for the lazy ones compiled specially.
    The XACML functions (`pbgm.functions.xacml`) also carry their XACML `signature`,
    and `raw`, their implementation without the argument checks of `impl`.
    """

    name: str
    min_args: int
    max_args: int | None
    description: str
    params: tuple[str, ...]
    returns: str = "boolean"
    impl: Callable[..., Any] | None = field(default=None, compare=False)
    category: str = ""
    signature: Signature | None = field(default=None, compare=False)
    raw: Callable[..., Any] | None = field(default=None, compare=False)

    def param(self, index: int) -> str:
        return self.params[min(index, len(self.params) - 1)]
