"""The Policy Information Point: attributes fetched before a decision.

A request names who asks for what (`subject.id`, `resource.asset_id`); policies
often need more (`subject.groups`, the asset's rated power). Attribute
providers fetch it; the PIP adds what they supply to the request, never
overwriting an attribute the request already carries.

Fail closed: a provider that fails leaves its attributes missing and the
failure is recorded, so a rule that needs them is Indeterminate (missing
attribute), never silently Permit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from pbgm.errors import ConfigurationError, NotFoundError
from pbgm.model import CATEGORIES, EvaluationError, Request

log = logging.getLogger(__name__)

Attributes = Mapping[str, Mapping[str, Any]]
"""Attributes by category: `{"subject": {"groups": [...]}}`."""


@runtime_checkable
class AttributeProvider(Protocol):
    """Supplies attributes for a request.

    `provides` names what it supplies as `category.name` paths; `category.*`
    means any attribute of that category. `provide` returns them by category
    and may leave out what it does not know.
    """

    provides: Collection[str]

    def provide(self, request: Request) -> Attributes: ...


class _Wants:
    """Which attributes a provider may add, and whether a request lacks any of them."""

    def __init__(self, provides: Collection[str]) -> None:
        self.paths = tuple(provides)
        self.any_of: set[str] = set()
        self.names: list[tuple[str, str]] = []
        for path in self.paths:
            category, _, name = path.partition(".")
            if category not in CATEGORIES or not name:
                raise ConfigurationError(
                    f"provided attribute `{path}` is not `<category>.<name>` or `<category>.*`"
                )
            if name == "*":
                self.any_of.add(category)
            else:
                self.names.append((category, name))
        self.only = self.names[0] if len(self.names) == 1 and not self.any_of else None

    def lacking(self, request: Request) -> bool:
        if self.only is not None:  # the common case, one attribute, straight
            return self.only[1] not in request.bag(self.only[0])
        return bool(self.any_of) or any(n not in request.bag(c) for c, n in self.names)

    def allows(self, category: str, name: str) -> bool:
        return category in self.any_of or (category, name) in self.names


class PolicyInformationPoint:
    """Runs providers in order; each sees what the ones before it added."""

    def __init__(self, providers: Iterable[AttributeProvider] = ()) -> None:
        self._providers = [(p, _Wants(p.provides)) for p in providers]

    def resolve(self, request: Request) -> tuple[Request, list[EvaluationError]]:
        """The request with the attributes it lacked, and the failures met."""
        errors: list[EvaluationError] = []
        for provider, wants in self._providers:
            if not wants.lacking(request):
                continue
            try:
                request = _merge(request, provider.provide(request), wants)
            except Exception:
                log.warning("attribute provider %r failed", provider, exc_info=True)
                errors.append(_failure(wants.paths))
        return request, errors


def _failure(paths: Sequence[str]) -> EvaluationError:
    names = ", ".join(f"`{p}`" for p in paths)
    return EvaluationError("attribute_provider_failed", f"could not fetch {names}")


def _merge(request: Request, supplied: Attributes, wants: _Wants) -> Request:
    """`request` with the attributes of `supplied` that `wants` allows and it lacks (an
    `ExtendedRequest` keeps its other categories)."""
    if wants.only is not None:  # the common case, one attribute (which it lacks): straight
        category, name = wants.only
        attributes = supplied.get(category)
        if not attributes or name not in attributes:
            return request
        bag = MappingProxyType({**request.bag(category), name: attributes[name]})
        return request.with_bag(category, bag)
    for category, attributes in supplied.items():
        if category not in CATEGORIES:
            continue
        current = request.bag(category)
        added = {
            name: value
            for name, value in attributes.items()
            if name not in current and wants.allows(category, name)
        }
        if added:
            request = request.with_bag(category, MappingProxyType({**current, **added}))
    return request


class GroupMembershipProvider:
    """`subject.groups` from `subject.id` through `groups_of(subject_id)`.

    An unknown subject (`groups_of` raises `NotFoundError`) is in no group;
    any other failure is a provider failure.
    """

    provides: Collection[str] = ("subject.groups",)

    def __init__(self, groups_of: Callable[[str], Iterable[str]]) -> None:
        self._groups_of = groups_of

    def provide(self, request: Request) -> Attributes:
        subject_id = request.subject.get("id")
        if not isinstance(subject_id, str):
            return {}
        try:
            groups = tuple(self._groups_of(subject_id))
        except NotFoundError:
            groups = ()
        return {"subject": {"groups": groups}}


class AssetAttributeProvider:
    """Resource attributes of the asset named by `resource.asset_id`.

    `lookup(asset_id)` returns the asset's attributes or None for an unknown
    asset; `names` limits which ones are added (default: any).
    """

    def __init__(
        self,
        lookup: Callable[[str], Mapping[str, Any] | None],
        *,
        names: Iterable[str] | None = None,
    ) -> None:
        self._lookup = lookup
        self.provides = ("resource.*",) if names is None else tuple(f"resource.{n}" for n in names)

    def provide(self, request: Request) -> Attributes:
        asset_id = request.resource.get("asset_id")
        if not isinstance(asset_id, str):
            return {}
        found = self._lookup(asset_id)
        return {} if found is None else {"resource": found}


class StaticAttributes:
    """Fixed attributes, for tests and demos: `StaticAttributes({"environment": {...}})`."""

    def __init__(self, attributes: Attributes) -> None:
        self._attributes = {c: dict(a) for c, a in attributes.items()}
        self.provides = tuple(f"{c}.{n}" for c, a in self._attributes.items() for n in a)

    def provide(self, request: Request) -> Attributes:
        return self._attributes
