"""XACML 3.0 policies and policy sets (XML) read into pbgm's model.

`read_policy(element, repository)` translates a `<Policy>` or `<PolicySet>` element
into a `pbgm.model.Policy` (a policy set is a `Policy` whose `is_set` holds), checking it
whole: every problem is collected with the element it is in, and a document with any
problem is refused (`XacmlError`), never half read. What it reads:

- namespace prefixes (elements are matched by local name in the XACML 3.0 namespace),
  `Description`, `PolicyDefaults` (its XPath version is accepted and unused), `Version`;
- targets: each `<AnyOf>` that is an equality of strings on one attribute becomes a
  pbgm target match (indexed); the others stay XACML matchers (`Target.any_of`);
- conditions, with `<VariableDefinition>`s inlined where they are referenced (each
  compiled once per reference; undefined, duplicate and circular variables are
  refused, and an expansion beyond `MAX_EXPANDED` nodes too);
- obligation and advice expressions (`attributes` when their ids are distinct and name
  no category or issuer, else `assignments`); a rule's obligations for the other effect,
  which can never apply, are left out;
- `<PolicyIdReference>` and `<PolicySetIdReference>`, resolved through a `Repository`
  (a directory of policies, or the store) with their version constraints; a reference
  that finds nothing, or that leads back to a policy being read, is refused;
- the pbgm combiner parameters (`urn:pbgm:policy:...`) that `pbgm.xacml.writer` adds to
  keep a pbgm policy's envelope, so that pbgm/v1 -> XACML -> pbgm/v1 is the identity.

Refused, with the element and the reason: XPath (`<AttributeSelector>`, the
`xpathExpression` type), an unknown function, data type or combining algorithm, a type
error a static check finds, a call of literals that always fails, a missing required
attribute. `<PolicyIssuer>` and `MaxDelegationDepth` (the administration and delegation
profile) are accepted and unused: as a core PDP does, pbgm trusts every policy it holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from pbgm.decision import check_condition, check_expression
from pbgm.decision.targets import check_any_of
from pbgm.errors import Problem
from pbgm.functions import DATATYPES, FUNCTIONS, XACML_FUNCTIONS
from pbgm.model import (
    AllOf,
    AnyOf,
    Apply,
    AssignmentExpression,
    AttributeRef,
    Effect,
    Expr,
    Literal,
    Match,
    Matcher,
    ObligationExpression,
    Policy,
    Rule,
    Target,
)
from pbgm.policy.syntax import freeze
from pbgm.xacml import names
from pbgm.xacml.elements import (
    XacmlError,
    children,
    local,
    namespace,
    text_of,
    unexpected_attributes,
)
from pbgm.xacml.envelope import with_envelope
from pbgm.xacml.references import DEFAULT_VERSION, NoRepository, Reference, Repository, version_key
from pbgm.xacml.safexml import Element

MAX_EXPANDED = 10_000
"""The most expression nodes a policy's conditions may hold once variables are inlined."""
MAX_POLICIES = 10_000
"""The most policies and policy sets one document may hold, references included."""

TYPE = "access_control"


# --- the reader ---------------------------------------------------------------------------------


_POLICY_CHILDREN = {
    "Description",
    "PolicyIssuer",
    "PolicyDefaults",
    "Target",
    "CombinerParameters",
    "RuleCombinerParameters",
    "VariableDefinition",
    "Rule",
    "ObligationExpressions",
    "AdviceExpressions",
}
_SET_CHILDREN = {
    "Description",
    "PolicyIssuer",
    "PolicyDefaults",
    "Target",
    "PolicySet",
    "Policy",
    "PolicySetIdReference",
    "PolicyIdReference",
    "CombinerParameters",
    "PolicyCombinerParameters",
    "PolicySetCombinerParameters",
    "ObligationExpressions",
    "AdviceExpressions",
}
_EXPRESSIONS = {
    "Apply",
    "AttributeValue",
    "AttributeDesignator",
    "AttributeSelector",
    "VariableReference",
    "Function",
}


class Reader:
    """One translation: its problems, the references being followed and those read."""

    def __init__(self, repository: Repository | None = None) -> None:
        self.repository = repository or NoRepository()
        self.problems: list[Problem] = []
        self.stack: list[tuple[str, str, str]] = []
        self.read: dict[tuple[str, str, str], Policy] = {}
        self.count = 0

    def fail(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, message))

    def attributes(self, element: Element, path: str) -> None:
        """Refuse the XML attributes the schema does not allow (`SubjectCategory` of XACML
        2.0 on a designator, a misspelt `MustBePresnt`)."""
        for name in unexpected_attributes(element):
            shown = name.rsplit("}", 1)[-1]
            self.fail(
                path, "unexpected_attribute", f"`{local(element)}` has no attribute `{shown}`"
            )

    def single(self, element: Element, names_: tuple[str, ...], path: str) -> None:
        """Refuse a second `Target`, `Condition`, `Description`... where one is allowed."""
        seen: set[str] = set()
        for child in children(element):
            name = local(child)
            if name in names_ and name in seen:
                self.fail(f"{path}/{name}", "unexpected_element", f"at most one `{name}` here")
            seen.add(name)

    # --- policies and policy sets -----------------------------------------------------

    def top(self, element: Element) -> Policy | None:
        kind = local(element)
        if kind not in ("Policy", "PolicySet") or namespace(element) != names.NS:
            self.fail(
                f"/{kind}",
                "not_a_policy",
                f"expected a XACML 3.0 `Policy` or `PolicySet` (namespace `{names.NS}`), "
                f"got `{kind}` in `{namespace(element) or 'no namespace'}`",
            )
            return None
        return self.node(element, "")

    def node(self, element: Element, parent: str) -> Policy | None:
        kind = local(element)
        id_attr = "PolicyId" if kind == "Policy" else "PolicySetId"
        node_id = element.get(id_attr, "")
        path = f"{parent}/{kind}[{node_id}]" if node_id else f"{parent}/{kind}"
        self.count += 1
        if self.count > MAX_POLICIES:
            if self.count == MAX_POLICIES + 1:
                self.fail(path, "too_many_policies", f"at most {MAX_POLICIES} policies")
            return None
        if not node_id:
            self.fail(path, "required", f"`{kind}` needs a `{id_attr}`")
        self.attributes(element, path)
        self.single(element, _ONCE, path)
        version = element.get("Version", DEFAULT_VERSION)
        if not _is_version(version):
            self.fail(path, "invalid_version", f"`{version}` is not a version such as `1.0`")
        if kind == "Policy":
            return self.policy(element, node_id, version, path)
        return self.policy_set(element, node_id, version, path)

    def header(
        self, element: Element, allowed: set[str], path: str
    ) -> tuple[str, Target | None, dict[str, str]]:
        """Description, the target (required) and the pbgm parameters of a node."""
        description = ""
        target: Target | None = None
        parameters: dict[str, str] = {}
        seen_target = False
        for child in children(element):
            name = local(child)
            if namespace(child) != names.NS or name not in allowed:
                self.fail(f"{path}/{name}", "unexpected_element", f"`{name}` is not allowed here")
            elif name == "Description":
                description = text_of(child)
            elif name == "PolicyIssuer":
                pass  # information for the delegation profile; a core PDP trusts the policy
            elif name == "Target":
                seen_target = True
                target = self.target(child, f"{path}/Target")
            elif name == "CombinerParameters":
                parameters.update(self.parameters(child, f"{path}/CombinerParameters"))
        if not seen_target:
            self.fail(path, "required", "a policy and a policy set need a `Target` (may be empty)")
        return description, target, parameters

    def policy(self, element: Element, policy_id: str, version: str, path: str) -> Policy | None:
        description, target, parameters = self.header(element, _POLICY_CHILDREN, path)
        algorithm = self.algorithm(element, "RuleCombiningAlgId", names.RULE_ALGORITHMS, path)
        variables = Variables(self, element, path)
        rules: list[Rule] = []
        seen: set[str] = set()
        for index, child in enumerate(children(element)):
            if local(child) != "Rule":
                continue
            rule = self.rule(child, variables, f"{path}/Rule[{child.get('RuleId') or index}]")
            if rule is None:
                continue
            if rule.id in seen:
                self.fail(
                    f"{path}/Rule[{rule.id}]",
                    "duplicate_rule_id",
                    f"rule id `{rule.id}` is used twice in the policy",
                )
            seen.add(rule.id)
            rules.append(rule)
        obligations, advice = self.outputs(element, variables, path, None)
        variables.finish()
        if target is None or algorithm is None:
            return None
        return with_envelope(
            Policy(
                id=policy_id,
                type=TYPE,
                policy_group="",
                rules=tuple(rules),
                rule_combining=algorithm,
                target=target,
                description=description,
                obligations=obligations,
                advice=advice,
                policy_version="" if version == DEFAULT_VERSION else version,
            ),
            parameters,
            self.fail,
            path,
        )

    def policy_set(self, element: Element, set_id: str, version: str, path: str) -> Policy | None:
        description, target, parameters = self.header(element, _SET_CHILDREN, path)
        algorithm = self.algorithm(element, "PolicyCombiningAlgId", names.POLICY_ALGORITHMS, path)
        members: list[Policy] = []
        seen: set[tuple[str, str]] = set()
        key = ("PolicySet", set_id, version)
        self.stack.append(key)
        try:
            for child in children(element):
                name = local(child)
                if name in ("Policy", "PolicySet"):
                    member = self.node(child, path)
                elif name in ("PolicyIdReference", "PolicySetIdReference"):
                    member = self.reference(child, path)
                else:
                    continue
                if member is None:
                    continue
                identity = (member.id, member.policy_version)
                if identity in seen:
                    self.fail(
                        f"{path}/{name}[{member.id}]",
                        "duplicate_policy_id",
                        f"`{member.id}` (version {member.policy_version or DEFAULT_VERSION}) "
                        "is in the policy set twice",
                    )
                seen.add(identity)
                members.append(member)
        finally:
            self.stack.pop()
        obligations, advice = self.outputs(element, Variables(self, None, path), path, None)
        if target is None or algorithm is None:
            return None
        return with_envelope(
            Policy(
                id=set_id,
                type=TYPE,
                policy_group="",
                target=target,
                description=description,
                obligations=obligations,
                advice=advice,
                policies=tuple(members),
                policy_combining=algorithm,
                policy_version="" if version == DEFAULT_VERSION else version,
            ),
            parameters,
            self.fail,
            path,
        )

    def algorithm(
        self, element: Element, attribute: str, known: Mapping[str, str], path: str
    ) -> str | None:
        urn = element.get(attribute)
        if urn is None:
            self.fail(path, "required", f"`{local(element)}` needs a `{attribute}`")
            return None
        found = known.get(urn)
        if found is None:
            self.fail(
                path,
                "unknown_combining_algorithm",
                f"`{urn}` is not a combining algorithm of this level (`{attribute}`)",
            )
        return found

    def parameters(self, element: Element, path: str) -> dict[str, str]:
        """The pbgm parameters among `<CombinerParameter>`s (others are accepted and unused,
        as the standard algorithms use none)."""
        found = {}
        for child in children(element):
            name = child.get("ParameterName", "")
            values = [v for v in children(child) if local(v) == "AttributeValue"]
            if name.startswith(names.PBGM_PARAMETER) and len(values) == 1:
                found[name[len(names.PBGM_PARAMETER) :]] = text_of(values[0])
        return found

    # --- references -----------------------------------------------------------------------

    def reference(self, element: Element, parent: str) -> Policy | None:
        kind = "Policy" if local(element) == "PolicyIdReference" else "PolicySet"
        wanted = Reference(
            kind,
            text_of(element).strip(),
            element.get("Version"),
            element.get("EarliestVersion"),
            element.get("LatestVersion"),
        )
        path = f"{parent}/{local(element)}[{wanted.id}]"
        self.attributes(element, path)
        found = [
            (version, source)
            for version, source in self.repository.candidates(kind, wanted.id)
            if wanted.admits(version)
        ]
        if not found:
            self.fail(
                path,
                "dangling_reference",
                f"no {kind} `{wanted.id}` that the reference "
                "admits is known (give the directory of the referenced policies)",
            )
            return None
        version, source = max(found, key=lambda item: version_key(item[0]))
        key = (kind, wanted.id, version)
        if key in self.stack:
            chain = " -> ".join(f"`{k[1]}`" for k in (*self.stack[self.stack.index(key) :], key))
            self.fail(path, "circular_reference", f"policies refer to each other: {chain}")
            return None
        if key in self.read:
            return self.read[key]
        if isinstance(source, Policy):
            self.read[key] = source
            return source
        self.stack.append(key)
        try:
            node = self.node(source, path)
        finally:
            self.stack.pop()
        if node is not None:
            self.read[key] = node
        return node

    # --- rules ------------------------------------------------------------------------------

    def rule(self, element: Element, variables: Variables, path: str) -> Rule | None:
        rule_id = element.get("RuleId")
        effect_text = element.get("Effect")
        self.attributes(element, path)
        self.single(element, ("Description", "Target", "Condition", *_OUTPUT_GROUPS), path)
        if not rule_id:
            self.fail(path, "required", "a rule needs a `RuleId`")
        try:
            effect = Effect(effect_text or "")
        except ValueError:
            self.fail(
                path, "invalid_effect", f"`Effect` is `Permit` or `Deny`, not `{effect_text}`"
            )
            return None
        description, target, condition = "", Target(), None
        for child in children(element):
            name = local(child)
            here = f"{path}/{name}"
            if name == "Description":
                description = text_of(child)
            elif name == "Target":
                target = self.target(child, here) or Target()
            elif name == "Condition":
                parts = children(child)
                if len(parts) != 1:
                    self.fail(here, "invalid_condition", "a `Condition` holds one expression")
                    continue
                condition = self.expression(parts[0], variables, here)
                if condition is not None:
                    self.check(check_condition, condition, here)
            elif name not in ("ObligationExpressions", "AdviceExpressions"):
                self.fail(here, "unexpected_element", f"`{name}` is not allowed in a rule")
        obligations, advice = self.outputs(element, variables, path, effect)
        return Rule(
            id=rule_id or "",
            effect=effect,
            target=target,
            condition=condition,
            obligations=obligations,
            advice=advice,
            description=description,
        )

    def check(self, checker: Callable[[Expr, str], list[Problem]], expr: Expr, path: str) -> None:
        for problem in checker(expr, "$"):
            where = problem.path[1:]
            self.fail(f"{path}{where}", problem.code, problem.message)

    # --- targets ------------------------------------------------------------------------------

    def target(self, element: Element, path: str) -> Target | None:
        matches: list[Match] = []
        any_of: list[AnyOf] = []
        paths: set[tuple[str, str]] = set()
        for i, child in enumerate(children(element), 1):
            here = f"{path}/AnyOf[{i}]"
            if local(child) != "AnyOf":
                self.fail(
                    here, "unexpected_element", f"`{local(child)}` is not allowed in a target"
                )
                continue
            alternatives = self.any_of(child, here)
            if alternatives is None:
                continue
            match = _as_match(alternatives)
            if match is not None and (match.category, match.name) not in paths:
                paths.add((match.category, match.name))
                matches.append(match)
            else:
                any_of.append(alternatives)
        for problem in check_any_of(any_of, ""):
            self.fail(f"{path}{problem.path}", problem.code, problem.message)
        matches.sort(key=lambda m: (m.category, m.name))
        return Target(tuple(matches), tuple(any_of))

    def any_of(self, element: Element, path: str) -> AnyOf | None:
        alternatives: list[AllOf] = []
        for j, all_of in enumerate(children(element), 1):
            here = f"{path}/AllOf[{j}]"
            if local(all_of) != "AllOf":
                self.fail(here, "unexpected_element", "an `AnyOf` holds `AllOf`s")
                continue
            matchers = [
                self.matcher(m, f"{here}/Match[{k}]") for k, m in enumerate(children(all_of), 1)
            ]
            if not matchers:
                self.fail(here, "required", "an `AllOf` holds at least one `Match`")
            alternatives.append(tuple(m for m in matchers if m is not None))
        if not alternatives:
            self.fail(path, "required", "an `AnyOf` holds at least one `AllOf`")
            return None
        return tuple(alternatives)

    def matcher(self, element: Element, path: str) -> Matcher | None:
        if local(element) != "Match":
            self.fail(path, "unexpected_element", "an `AllOf` holds `Match`es")
            return None
        function = element.get("MatchId")
        parts = children(element)
        self.attributes(element, path)
        if not function or len(parts) != 2 or local(parts[0]) != "AttributeValue":
            self.fail(
                path,
                "invalid_match",
                "a `Match` has a `MatchId`, an `AttributeValue` and a designator",
            )
            return None
        value = self.value(parts[0], f"{path}/AttributeValue")
        if local(parts[1]) == "AttributeSelector":
            self.fail(f"{path}/AttributeSelector", "unsupported", _XPATH)
            return None
        if local(parts[1]) != "AttributeDesignator":
            self.fail(path, "invalid_match", "the second part of a `Match` is a designator")
            return None
        attribute = self.designator(parts[1], f"{path}/AttributeDesignator")
        if value is None or attribute is None:
            return None
        if function == names.PBGM_MATCH:
            return Matcher(function, value, attribute)
        return Matcher(function, value, attribute)

    # --- expressions ---------------------------------------------------------------------------

    def expression(self, element: Element, variables: Variables, path: str) -> Expr | None:
        name = local(element)
        if name == "Apply":
            return self.apply(element, variables, path)
        if name == "AttributeValue":
            return self.value(element, path)
        if name == "AttributeDesignator":
            return self.designator(element, path)
        if name == "VariableReference":
            return variables.reference(element.get("VariableId", ""), path)
        if name == "AttributeSelector":
            self.fail(path, "unsupported", _XPATH)
            return None
        if name == "Function":
            self.fail(
                path,
                "invalid_expression",
                "a `Function` is only the first argument of a higher-order function",
            )
            return None
        self.fail(path, "unexpected_element", f"`{name}` is not an expression")
        return None

    def apply(self, element: Element, variables: Variables, path: str) -> Expr | None:
        function = element.get("FunctionId", "")
        self.attributes(element, path)
        args: list[Expr] = []
        ok = True
        position = 0
        for child in children(element):
            name = local(child)
            if name == "Description":
                continue
            position += 1
            here = f"{path}/{name}[{position}]"
            if name == "Function" and position == 1:
                args.append(Literal(child.get("FunctionId", "")))
                continue
            if name not in _EXPRESSIONS:
                self.fail(here, "unexpected_element", f"`{name}` is not an expression")
                ok = False
                continue
            arg = self.expression(child, variables, here)
            if arg is None:
                ok = False
            else:
                args.append(arg)
        if not ok:
            return None
        if function == names.PBGM_LIST:
            return _list_literal(args, self, path)
        if function.startswith(names.PBGM_FUNCTION):
            short = function[len(names.PBGM_FUNCTION) :]
            if short not in FUNCTIONS:
                self.fail(path, "unknown_function", f"`{function}` is not a pbgm function")
                return None
            return Apply(short, tuple(args))
        if function not in XACML_FUNCTIONS:
            self.fail(
                path,
                "unknown_function",
                f"`{function}` is not a function pbgm supports "
                "(XPath and non-mandatory functions are not)",
            )
            return None
        return Apply(function, tuple(args))

    def value(self, element: Element, path: str) -> Expr | None:
        """An `<AttributeValue>`: strings, booleans and numbers as plain literals, other
        types as typed literals (read and checked when compiled)."""
        data_type = element.get("DataType", "")
        if children(element):
            self.fail(path, "unsupported", "an `AttributeValue` with XML content is not supported")
            return None
        text = text_of(element)
        if data_type == names.PBGM_VALUE:
            try:
                return Literal(freeze(json.loads(text)))
            except ValueError:
                self.fail(path, "invalid_literal", "a pbgm value is JSON text")
                return None
        if data_type.startswith(names.PBGM_TYPED):
            return Literal(text, data_type[len(names.PBGM_TYPED) :])
        found = DATATYPES.get(data_type)
        if found is None:
            self.fail(path, "unknown_data_type", _unknown_type(data_type))
            return None
        try:
            value = found.parse(text)
        except ValueError as exc:
            self.fail(path, "invalid_literal", str(exc))
            return None
        if found.cls in (str, bool, int, float):
            return Literal(value)
        return Literal(text, data_type)

    def designator(self, element: Element, path: str) -> AttributeRef | None:
        category = element.get("Category")
        attribute_id = element.get("AttributeId")
        data_type = element.get("DataType")
        must = element.get("MustBePresent")
        self.attributes(element, path)
        if not category or not attribute_id or not data_type or must is None:
            self.fail(
                path,
                "required",
                "a designator needs `Category`, `AttributeId`, `DataType` and `MustBePresent`",
            )
            return None
        if must not in ("true", "false", "1", "0"):
            self.fail(path, "invalid_attribute", "`MustBePresent` is `true` or `false`")
            return None
        pbgm_category = names.category_name(category)
        name = names.attribute_name(pbgm_category, attribute_id)
        optional = must in ("false", "0")
        if data_type == names.PBGM_VALUE:
            return AttributeRef(pbgm_category, name, optional)
        if data_type not in DATATYPES:
            self.fail(path, "unknown_data_type", _unknown_type(data_type))
            return None
        return AttributeRef(pbgm_category, name, optional, data_type, element.get("Issuer"))

    # --- obligations and advice -------------------------------------------------------------------

    def outputs(
        self, element: Element, variables: Variables, path: str, effect: Effect | None
    ) -> tuple[tuple[ObligationExpression, ...], tuple[ObligationExpression, ...]]:
        found: dict[str, list[ObligationExpression]] = {"Obligation": [], "Advice": []}
        for child in children(element):
            name = local(child)
            if name not in ("ObligationExpressions", "AdviceExpressions"):
                continue
            kind = name[: -len("Expressions")]
            for i, item in enumerate(children(child), 1):
                here = f"{path}/{name}/{local(item)}[{i}]"
                output = self.output(item, kind, variables, here)
                if output is not None and (effect is None or output.fulfill_on == effect):
                    found[kind].append(output)
        return tuple(found["Obligation"]), tuple(found["Advice"])

    def output(
        self, element: Element, kind: str, variables: Variables, path: str
    ) -> ObligationExpression | None:
        if local(element) != f"{kind}Expression":
            self.fail(path, "unexpected_element", f"expected `{kind}Expression`")
            return None
        output_id = element.get(f"{kind}Id")
        applies = element.get("FulfillOn" if kind == "Obligation" else "AppliesTo")
        self.attributes(element, path)
        if not output_id or applies not in ("Permit", "Deny"):
            self.fail(
                path,
                "required",
                f"`{kind}Expression` needs `{kind}Id` and "
                f"`{'FulfillOn' if kind == 'Obligation' else 'AppliesTo'}`",
            )
            return None
        assignments: list[AssignmentExpression] = []
        for i, item in enumerate(children(element), 1):
            here = f"{path}/AttributeAssignmentExpression[{i}]"
            parts = children(item)
            attribute_id = item.get("AttributeId")
            if (
                local(item) != "AttributeAssignmentExpression"
                or len(parts) != 1
                or not attribute_id
            ):
                self.fail(
                    here,
                    "invalid_assignment",
                    "an assignment has an `AttributeId` and one expression",
                )
                continue
            self.attributes(item, here)
            expr = self.expression(parts[0], variables, here)
            if expr is None:
                continue
            self.check(check_expression, expr, here)
            assignments.append(
                AssignmentExpression(attribute_id, expr, item.get("Category"), item.get("Issuer"))
            )
        ids = [a.attribute_id for a in assignments]
        plain = len(set(ids)) == len(ids) and all(
            a.category is None and a.issuer is None for a in assignments
        )
        if plain:
            attributes = MappingProxyType({a.attribute_id: a.expression for a in assignments})
            return ObligationExpression(output_id, Effect(applies), attributes)
        return ObligationExpression(output_id, Effect(applies), assignments=tuple(assignments))


class Variables:
    """The `<VariableDefinition>`s of a policy, inlined where referenced."""

    def __init__(self, reader: Reader, element: Element | None, path: str) -> None:
        self.reader, self.path = reader, path
        self.definitions: dict[str, Element] = {}
        self.done: dict[str, Expr | None] = {}
        self.pending: list[str] = []
        self.nodes = 0
        for child in children(element) if element is not None else ():
            if local(child) != "VariableDefinition":
                continue
            variable_id = child.get("VariableId", "")
            here = f"{path}/VariableDefinition[{variable_id}]"
            if not variable_id or len(children(child)) != 1:
                reader.fail(
                    here, "invalid_variable", "a variable has a `VariableId` and one expression"
                )
            elif variable_id in self.definitions:
                reader.fail(here, "duplicate_variable", f"`{variable_id}` is defined twice")
            else:
                self.definitions[variable_id] = child

    def reference(self, variable_id: str, path: str) -> Expr | None:
        if variable_id not in self.definitions:
            self.reader.fail(path, "undefined_variable", f"no variable `{variable_id}` is defined")
            return None
        if variable_id in self.pending:
            chain = " -> ".join(f"`{v}`" for v in (*self.pending, variable_id))
            self.reader.fail(path, "circular_variable", f"variables refer to each other: {chain}")
            return None
        if variable_id not in self.done:
            self.pending.append(variable_id)
            element = children(self.definitions[variable_id])[0]
            here = f"{self.path}/VariableDefinition[{variable_id}]"
            self.done[variable_id] = self.reader.expression(element, self, here)
            self.pending.pop()
        expr = self.done[variable_id]
        if expr is not None:
            self.nodes += _size(expr)
            if self.nodes > MAX_EXPANDED:
                if self.nodes - _size(expr) <= MAX_EXPANDED:
                    self.reader.fail(
                        path,
                        "too_complex",
                        f"with its variables inlined the policy "
                        f"holds more than {MAX_EXPANDED} expressions",
                    )
                return None
        return expr

    def finish(self) -> None:
        """Check the variables never referenced too (their errors are errors of the policy)."""
        for variable_id in self.definitions:
            if variable_id not in self.done:
                self.reference(variable_id, f"{self.path}/VariableDefinition[{variable_id}]")
                self.nodes -= _size(self.done.get(variable_id))


# --- helpers -------------------------------------------------------------------------------------

_ONCE = (
    "Description",
    "PolicyIssuer",
    "PolicyDefaults",
    "Target",
    "ObligationExpressions",
    "AdviceExpressions",
)
_OUTPUT_GROUPS = ("ObligationExpressions", "AdviceExpressions")
_XPATH = (
    "XPath (`AttributeSelector`, `xpathExpression`) is an optional feature pbgm does not support"
)


def _unknown_type(data_type: str) -> str:
    if data_type.endswith("xpathExpression"):
        return _XPATH
    return f"`{data_type}` is not a data type pbgm supports"


def _is_version(text: str) -> bool:
    return all(part.isdigit() for part in text.split(".")) and bool(text)


def _size(expr: Expr | None) -> int:
    if expr is None:
        return 0
    if isinstance(expr, Apply):
        return 1 + sum(_size(a) for a in expr.args)
    return 1


def _list_literal(args: list[Expr], reader: Reader, path: str) -> Expr | None:
    if not all(isinstance(a, Literal) and a.type is None for a in args):
        reader.fail(path, "invalid_literal", "a pbgm list holds plain values")
        return None
    return Literal(tuple(a.value for a in args if isinstance(a, Literal)))


def _as_match(alternatives: AnyOf) -> Match | None:
    """The pbgm target match an `<AnyOf>` is, when it is one: every `<AllOf>` a single
    `string-equal` of a string and a string designator of one of the four categories,
    optional, without issuer, all on one attribute (or pbgm's own target match)."""
    category = name = None
    values: list[Any] = []
    for all_of in alternatives:
        if len(all_of) != 1:
            return None
        matcher = all_of[0]
        ref, value = matcher.attribute, matcher.value
        if not isinstance(value, Literal) or not ref.may_be_absent or ref.issuer is not None:
            return None
        if ref.category not in names.CATEGORY_URNS or (category, name) not in (
            (None, None),
            (ref.category, ref.name),
        ):
            return None
        plain_string = (
            matcher.function == _STRING_EQUAL
            and ref.data_type == names.STRING
            and value.type is None
            and isinstance(value.value, str)
        )
        pbgm_match = matcher.function == names.PBGM_MATCH and ref.data_type is None
        if not plain_string and not pbgm_match:
            return None
        category, name = ref.category, ref.name
        values.append(value.value)
    if category is None or name is None:
        return None
    try:
        return Match(category, name, frozenset(values))
    except TypeError:
        return None


_STRING_EQUAL = "urn:oasis:names:tc:xacml:1.0:function:string-equal"


def read_policy(element: Element, repository: Repository | None = None) -> Policy:
    """The pbgm model of a `<Policy>` or `<PolicySet>` element; `XacmlError` listing every
    problem otherwise."""
    reader = Reader(repository)
    policy = reader.top(element)
    if reader.problems or policy is None:
        raise XacmlError(reader.problems or [Problem("/", "invalid_xacml", "nothing was read")])
    return policy
