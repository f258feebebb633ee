"""XACML types of expressions, as the condition compiler checks them before evaluation.

A type is `(name, bag)`: a data type's short name (`string`, `dateTime`...) and whether
the expression yields a bag of it. A designator yields a bag of its data type, a typed
literal one value of its type, a plain literal the type of its JSON value (string,
boolean, integer, double), a XACML function what its signature returns; anything else
(a pbgm function, an untyped attribute) is known only when evaluated.
"""

from __future__ import annotations

from pbgm.functions import DATATYPES
from pbgm.model import Literal

XacmlType = tuple[str, bool]

_PLAIN = {str: "string", bool: "boolean", int: "integer", float: "double"}
_PBGM_TYPED = {"datetime": "dateTime", "duration": "dayTimeDuration"}


def type_name(found: XacmlType) -> str:
    """`string`, or `string[]` for a bag."""
    return found[0] + "[]" if found[1] else found[0]


def literal_type(lit: Literal) -> XacmlType | None:
    if lit.type is not None:
        if lit.type in DATATYPES:
            return (DATATYPES[lit.type].name, False)
        name = _PBGM_TYPED.get(lit.type)
        return None if name is None else (name, False)
    name = _PLAIN.get(lit.value.__class__)
    return None if name is None else (name, False)
