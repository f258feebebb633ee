"""The decision point: combining tables, matching, the index, and the
`PolicyDecisionPoint` service (loading, refreshing, threads, failing closed)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pbgm.decision.combining import (
    ALGORITHMS,
    DENY,
    INDETERMINATE_D,
    INDETERMINATE_DP,
    INDETERMINATE_P,
    NOT_APPLICABLE,
    PERMIT,
    Result,
)
from pbgm.decision.evaluator import CandidateIndex
from pbgm.errors import ConfigurationError, InvalidInputError, StoreUnavailableError
from pbgm.model import Decision, PolicySet, Request
from pbgm.pdp import PolicyDecisionPoint, compile_policy_set, evaluate
from pbgm.policy.syntax import parse_policy, policy_set_from_documents

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
P, D, NA = PERMIT, DENY, NOT_APPLICABLE
ID, IP, IDP = INDETERMINATE_D, INDETERMINATE_P, INDETERMINATE_DP


def policy(id: str, effect: str = "Permit", condition: Any = True, **extra: Any) -> dict:
    rule = {"id": f"{id}-rule", "effect": effect, "condition": condition}
    return {"id": id, "type": "operational_limits", "policy_group": "g", "rules": [rule], **extra}


def policy_set(*policies: dict, combining: str = "deny-overrides", revision: int = 0) -> PolicySet:
    built = policy_set_from_documents({"id": "s", "policy_combining": combining}, policies)
    return PolicySet(built.id, built.policies, built.policy_combining, revision=revision)


def decide(ps: PolicySet, now: datetime = NOW, **request: Any) -> Any:
    return evaluate(compile_policy_set(ps), Request(**request), now)


# --- combining algorithms (XACML 3.0 Appendix C) ----------------------------------------


class Stub:
    """A child with a fixed result, for the combining tables."""

    def __init__(self, position: int, decision: int, applies: bool = True) -> None:
        self.id = f"c{position}"
        self.decision, self.applies_ = decision, applies
        self.evaluated = False

    def applies(self, request: Request, now: datetime) -> bool:
        return self.applies_

    def evaluate(self, request: Request, now: datetime) -> Result:
        self.evaluated = True
        return Result(self.decision if self.applies_ else NA, self.id)


COMBINING_TABLE = [
    ("deny-overrides: deny wins over permit", "deny-overrides", [P, D], D),
    ("deny-overrides: permit without deny", "deny-overrides", [NA, P], P),
    ("deny-overrides: Indeterminate{D} with permit is DP", "deny-overrides", [ID, P], IDP),
    ("deny-overrides: Indeterminate{D} with Indeterminate{P}", "deny-overrides", [ID, IP], IDP),
    ("deny-overrides: Indeterminate{D} alone", "deny-overrides", [NA, ID], ID),
    ("deny-overrides: Indeterminate{P} loses to permit", "deny-overrides", [IP, P], P),
    ("deny-overrides: Indeterminate{P} alone", "deny-overrides", [IP, NA], IP),
    ("deny-overrides: deny wins over DP", "deny-overrides", [IDP, D], D),
    ("deny-overrides: nothing applies", "deny-overrides", [NA, NA], NA),
    ("deny-overrides: no children", "deny-overrides", [], NA),
    ("permit-overrides: permit wins over deny", "permit-overrides", [D, P], P),
    ("permit-overrides: Indeterminate{P} with deny is DP", "permit-overrides", [IP, D], IDP),
    ("permit-overrides: Indeterminate{D} loses to deny", "permit-overrides", [ID, D], D),
    ("permit-overrides: Indeterminate{D} alone", "permit-overrides", [ID], ID),
    ("permit-overrides: Indeterminate{P} alone", "permit-overrides", [IP, NA], IP),
    ("permit-overrides: DP propagates", "permit-overrides", [IDP, D], IDP),
    ("first-applicable: first decision wins", "first-applicable", [NA, D, P], D),
    ("first-applicable: indeterminate kind kept", "first-applicable", [IP, P], IP),
    ("first-applicable: nothing applies", "first-applicable", [NA], NA),
    ("only-one-applicable: the one that applies", "only-one-applicable", [NA, IDP], IDP),
    ("deny-unless-permit: permit", "deny-unless-permit", [D, P], P),
    ("deny-unless-permit: indeterminate denies", "deny-unless-permit", [IDP, NA], D),
    ("deny-unless-permit: no children denies", "deny-unless-permit", [], D),
    ("permit-unless-deny: deny", "permit-unless-deny", [P, D], D),
    ("permit-unless-deny: indeterminate permits", "permit-unless-deny", [IDP, ID], P),
]


@pytest.mark.parametrize(
    ("what", "algorithm", "children", "expected"),
    COMBINING_TABLE,
    ids=[r[0] for r in COMBINING_TABLE],
)
def test_combining_algorithm_table(what, algorithm, children, expected):
    stubs = [Stub(i, d) for i, d in enumerate(children)]
    decision, _ = ALGORITHMS[algorithm](stubs, Request(), NOW, None)
    assert decision == expected


def test_only_one_applicable_uses_targets_not_results_and_names_the_conflict():
    stubs = [Stub(0, NA), Stub(1, P), Stub(2, D, applies=False)]
    decision, results = ALGORITHMS["only-one-applicable"](stubs, Request(), NOW, "owner")
    assert decision == IDP
    assert [r.id for r in results] == ["c0", "c1"]
    assert results[0].cause.code == "multiple_applicable"
    assert not any(s.evaluated for s in stubs)


def test_first_applicable_stops_at_the_first_decision():
    stubs = [Stub(0, NA), Stub(1, D), Stub(2, P)]
    ALGORITHMS["first-applicable"](stubs, Request(), NOW, None)
    assert [s.evaluated for s in stubs] == [True, True, False]


# --- targets ------------------------------------------------------------------------------

MATCHING = [
    ("a scalar among the values", {"resource": {"id": ["r1", "r2"]}}, {"id": "r2"}, True),
    ("a bag sharing one value", {"resource": {"tag": "b"}}, {"tag": ["a", "b"]}, True),
    ("an empty bag", {"resource": {"tag": "b"}}, {"tag": []}, False),
    ("a missing attribute", {"resource": {"id": "r1"}}, {}, False),
    ("a null attribute", {"resource": {"id": "r1"}}, {"id": None}, False),
    ("true does not match 1", {"resource": {"critical": 1}}, {"critical": True}, False),
    ("1 does not match true", {"resource": {"critical": True}}, {"critical": 1}, False),
    ("1.0 matches 1", {"resource": {"level": 1}}, {"level": 1.0}, True),
    ("a mapping matches nothing", {"resource": {"id": "r1"}}, {"id": {"r1": 1}}, False),
    ("a list inside a bag matches nothing", {"resource": {"id": "r1"}}, {"id": [["r1"]]}, False),
    ("a string is not a bag of characters", {"resource": {"id": "r"}}, {"id": "r1"}, False),
]


@pytest.mark.parametrize("index_threshold", [0, 100], ids=["indexed", "scanned"])
@pytest.mark.parametrize(
    ("what", "target", "resource", "matches"), MATCHING, ids=[r[0] for r in MATCHING]
)
def test_target_matching(what, target, resource, matches, index_threshold):
    ps = policy_set(policy("p", target=target))
    compiled = compile_policy_set(ps, index_threshold=index_threshold)
    response = evaluate(compiled, Request(resource=resource), NOW)
    assert response.decision is (Decision.PERMIT if matches else Decision.NOT_APPLICABLE)


# --- the index ------------------------------------------------------------------------------


def test_the_index_selects_one_policy_among_ten_thousand():
    docs = [policy(f"p{i}", target={"resource": {"id": f"r{i}"}}) for i in range(10_000)]
    compiled = compile_policy_set(policy_set(*docs))
    request = Request(resource={"id": "r4242"})
    assert [p.id for p in compiled.index.candidates(request)] == ["p4242"]
    assert evaluate(compiled, request, NOW).policy_ids == ("p4242",)


def test_index_keeps_the_original_order_for_first_applicable():
    docs = [
        policy("by-action", "Deny", target={"action": {"id": "write"}}),
        policy("everything", "Permit"),
        policy("by-id", "Permit", target={"resource": {"id": "r1"}}),
    ]
    docs += [policy(f"other{i}", target={"resource": {"id": f"x{i}"}}) for i in range(20)]
    ps = policy_set(*docs, combining="first-applicable")
    compiled = compile_policy_set(ps, index_threshold=0)
    request = Request(resource={"id": "r1"}, action={"id": "write"})
    candidates = compiled.index.candidates(request)
    assert [p.id for p in candidates] == ["by-action", "everything", "by-id"]
    assert evaluate(compiled, request, NOW).policy_ids == ("by-action",)


def test_index_prefers_the_resource_id_as_key():
    parsed = parse_policy(
        policy("p", target={"action": {"id": "read"}, "resource": {"id": "r1", "kind": "x"}})
    )
    index = CandidateIndex([parsed], [parsed.target.matches])
    assert index.candidates(Request(resource={"id": "r1"})) == (parsed,)
    assert index.candidates(Request(action={"id": "read"}, resource={"kind": "x"})) == ()


# --- validity windows and time --------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "now", "decision"),
    [
        ("before the window", NOW - timedelta(days=2), Decision.NOT_APPLICABLE),
        ("at the start, inclusive", NOW - timedelta(days=1), Decision.PERMIT),
        ("inside", NOW, Decision.PERMIT),
        ("at the end, exclusive", NOW + timedelta(days=1), Decision.NOT_APPLICABLE),
    ],
)
def test_validity_window_is_half_open(what, now, decision):
    window = {"valid_from": (NOW - timedelta(days=1)).isoformat()}
    window["valid_until"] = (NOW + timedelta(days=1)).isoformat()
    assert decide(policy_set(policy("p", **window)), now=now).decision is decision


def test_current_time_comes_from_now_unless_the_request_has_one():
    after_noon = {"apply": "greater-than", "args": [{"attr": "environment.current_time"},
                                                    {"value": "2026-03-02T11:00:00Z",
                                                     "type": "datetime"}]}  # fmt: skip
    ps = policy_set(policy("p", condition=after_noon))
    assert decide(ps).decision is Decision.PERMIT
    morning = {"current_time": "2026-03-02T10:00:00Z"}
    assert decide(ps, environment=morning).decision is Decision.NOT_APPLICABLE
    assert decide(ps, environment={"current_time": None}).decision is Decision.PERMIT


def test_a_naive_now_is_refused():
    with pytest.raises(InvalidInputError):
        decide(policy_set(policy("p")), now=datetime(2026, 3, 2, 12))


# --- failing closed -------------------------------------------------------------------------


def test_a_condition_that_does_not_compile_is_indeterminate_and_reported():
    broken = {"apply": "no-such-function", "args": []}
    ps = policy_set(policy("allow"), policy("block", "Deny", broken))
    compiled = compile_policy_set(ps)
    assert [p.code for p in compiled.problems] == ["invalid_policy"]
    response = evaluate(compiled, Request(), NOW)
    assert response.decision is Decision.INDETERMINATE
    assert response.status.code == "processing-error"
    assert response.errors[0].rule_id == "block-rule"


def test_an_unknown_combining_algorithm_is_indeterminate():
    doc = policy("p", rule_combining="most-permissive")
    response = decide(policy_set(doc))
    assert response.decision is Decision.INDETERMINATE
    assert "most-permissive" in response.status.message


def test_an_unknown_policy_combining_algorithm_is_indeterminate():
    response = decide(policy_set(policy("p"), combining="yes-always"))
    assert response.decision is Decision.INDETERMINATE


def test_odd_request_values_never_raise():
    ps = policy_set(policy("p", target={"subject": {"id": "alice"}}, condition={
        "apply": "is-in", "args": ["ops", {"attr": "subject.groups"}]}))  # fmt: skip
    odd = Request(subject={"id": {"nested": ["alice"]}, "groups": {"ops": True}})
    assert decide(ps, subject=odd.subject).decision is Decision.NOT_APPLICABLE
    weird = decide(ps, subject={"id": "alice", "groups": [{"ops": 1}]})
    assert weird.decision in (Decision.NOT_APPLICABLE, Decision.INDETERMINATE)


# --- the service ----------------------------------------------------------------------------


class Source:
    """A policy source whose revision the test moves."""

    def __init__(self, policy_set: PolicySet) -> None:
        self.policy_set, self.calls, self.fail = policy_set, 0, False

    def __call__(self) -> PolicySet:
        self.calls += 1
        if self.fail:
            raise StoreUnavailableError("the store is down")
        return self.policy_set


def test_an_absent_policy_set_is_not_applicable_and_not_allowed():
    response = PolicyDecisionPoint(clock=lambda: NOW).decide(Request())
    assert response.decision is Decision.NOT_APPLICABLE
    assert not response.allowed


def test_load_swaps_the_policy_set():
    pdp = PolicyDecisionPoint(clock=lambda: NOW)
    assert pdp.revision is None
    pdp.load(policy_set(policy("p"), revision=3))
    assert pdp.revision == 3
    assert pdp.decide(Request()).decision is Decision.PERMIT


def test_refresh_reloads_only_when_the_revision_moves():
    source = Source(policy_set(policy("p"), revision=1))
    pdp = PolicyDecisionPoint(source=source, clock=lambda: NOW)
    assert pdp.refresh() is True
    assert pdp.refresh() is False
    assert pdp.refresh(revision=1) is False
    assert source.calls == 2  # the known revision did not even ask the source
    source.policy_set = policy_set(policy("p", "Deny"), revision=2)
    assert pdp.refresh(revision=2) is True
    assert (pdp.revision, pdp.decide(Request()).decision) == (2, Decision.DENY)


def test_the_first_decision_loads_from_the_source():
    pdp = PolicyDecisionPoint(source=Source(policy_set(policy("p"), revision=1)))
    assert pdp.decide(Request(), now=NOW).decision is Decision.PERMIT


def test_a_failing_source_keeps_the_last_good_set():
    source = Source(policy_set(policy("p"), revision=1))
    pdp = PolicyDecisionPoint(source=source, clock=lambda: NOW)
    pdp.refresh()
    source.fail = True
    with pytest.raises(StoreUnavailableError):
        pdp.refresh()
    assert pdp.decide(Request()).decision is Decision.PERMIT


def test_a_source_failing_at_first_use_denies_without_raising():
    source = Source(policy_set(policy("p"), revision=1))
    source.fail = True
    pdp = PolicyDecisionPoint(source=source, clock=lambda: NOW)
    assert pdp.decide(Request()).decision is Decision.NOT_APPLICABLE


def test_refresh_without_a_source_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        PolicyDecisionPoint().refresh()


def test_decide_uses_the_clock_unless_now_is_given():
    ps = policy_set(policy("p", valid_until="2026-03-02T13:00:00Z"))
    pdp = PolicyDecisionPoint(ps, clock=lambda: NOW + timedelta(hours=2))
    assert pdp.decide(Request()).decision is Decision.NOT_APPLICABLE
    assert pdp.decide(Request(), now=NOW).decision is Decision.PERMIT


def test_decide_batch_answers_in_order_with_one_clock_reading():
    readings = []
    window = {"valid_until": "2026-03-02T13:00:00Z"}
    ps = policy_set(policy("p", target={"resource": {"id": "r1"}}, **window))
    pdp = PolicyDecisionPoint(ps, clock=lambda: readings.append(1) or NOW)
    batch = [Request(resource={"id": "r1"}), Request(resource={"id": "r2"})]
    decisions = [r.decision for r in pdp.decide_batch(batch)]
    assert decisions == [Decision.PERMIT, Decision.NOT_APPLICABLE]
    assert len(readings) == 1


AFTER_NEW_YEAR = {
    "apply": "greater-than",
    "args": [
        {"attr": "environment.current_time"},
        {"value": "2026-01-01T00:00:00Z", "type": "datetime"},
    ],
}
CLOCKS = [
    ("no window and no time attribute: never read", {}, 0),
    ("a validity window: read", {"valid_from": "2026-01-01T00:00:00Z"}, 1),
    ("a condition on the current time: read", {"condition": AFTER_NEW_YEAR}, 1),
]


@pytest.mark.parametrize(("what", "extra", "reads"), CLOCKS, ids=[c[0] for c in CLOCKS])
def test_the_clock_is_read_only_when_the_policy_set_uses_time(what, extra, reads):
    readings = []
    ps = policy_set(policy("p", **{"condition": True, **extra}))
    pdp = PolicyDecisionPoint(ps, clock=lambda: readings.append(1) or NOW)
    assert pdp.decide(Request()).allowed
    assert pdp.decide_batch([Request(), Request()])[0].allowed
    assert len(readings) == 2 * reads


def test_deciding_while_another_thread_reloads_sees_whole_sets_only():
    permit_set = policy_set(policy("a1"), policy("a2"), revision=1)
    deny_set = policy_set(policy("b1", "Deny"), policy("b2", "Deny"), revision=2)
    whole = {(Decision.PERMIT, ("a1", "a2")), (Decision.DENY, ("b1", "b2"))}
    pdp = PolicyDecisionPoint(permit_set, clock=lambda: NOW)
    stop, seen, problems = threading.Event(), set(), []

    def reload() -> None:
        for i in range(300):
            pdp.load(deny_set if i % 2 else permit_set)
        stop.set()

    def decide_until_stopped() -> None:
        while not stop.is_set():
            for response in pdp.decide_batch([Request()] * 5):
                outcome = (response.decision, response.policy_ids)
                seen.add(outcome)
                if outcome not in whole:
                    problems.append(outcome)

    deciders = [threading.Thread(target=decide_until_stopped) for _ in range(3)]
    for thread in deciders:
        thread.start()
    reload()
    for thread in deciders:
        thread.join()
    assert problems == []
    assert seen <= whole
