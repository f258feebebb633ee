"""The broker plan compiled from a real repository (MemoryStore) and pbgm's own PDP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.broker import (
    PUBLISH,
    SUBSCRIBE,
    AccessPlan,
    Grant,
    NamedGrants,
    broker_password,
    compile_plan,
    read_directory,
)
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import Group, Store, User
from pbgm.testing import memory_store, permit, policy_document

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = b"s" * 32
PREFIX = "pbgm/relay/"


def reads(group: str, **rule: Any) -> dict[str, Any]:
    """A permit for members of `group` to subscribe (plus whatever `rule` adds)."""
    member = {"apply": "at-least-one-member-of", "args": [{"attr": "subject.groups"}, [group]]}
    extra = rule.pop("condition", None)
    condition = member if extra is None else {"apply": "and", "args": [member, extra]}
    return permit(f"{group}-reads", target={"action": {"id": "subscribe"}},
                  condition=condition, **rule)  # fmt: skip


def data_access(policy_id: str, topics: list[str], consumers: dict[str, Any],
                *rules: dict[str, Any], **fields: Any) -> dict[str, Any]:  # fmt: skip
    content = {"data": {"topics": topics}, "consumers": consumers}
    return policy_document(policy_id, policy_group="data-sharing", rules=list(rules),
                           content=content, **fields)  # fmt: skip


def repository(*documents: dict[str, Any]) -> Store:
    store = memory_store(policies=documents)
    for name, group in (("ann", "readers"), ("kib", "kibernet"), ("eve", None), ("off", "readers")):
        store.add_user(User(name, enabled=name != "off"), actor="t")
        if group is not None:
            if group not in {g.name for g in store.list_groups()}:
                store.add_group(Group(group), actor="t")
            store.add_member(group, name, actor="t")
    return store


def plan_of(store: Store, **named: NamedGrants) -> AccessPlan:
    directory = read_directory(store, NOW).directory
    return compile_plan(
        directory,
        relay_principal="pbgm-relay",
        relay_prefix=PREFIX,
        named=named,
        password=lambda name: broker_password(SECRET, name),
        now=NOW,
    )


def grants(plan: AccessPlan, name: str) -> set[tuple[str, str, bool]]:
    client = plan.client(name)
    assert client is not None, name
    return {(g.kind, g.topic, g.allow) for g in client.grants}


GUARD = (PUBLISH, PREFIX + "#", False)


def test_a_plain_permit_grants_the_topic_itself() -> None:
    plan = plan_of(repository(data_access("raw", ["/site-a/+/#"], {"groups": ["readers"]},
                                          reads("readers"))))  # fmt: skip
    assert grants(plan, "ann") == {
        GUARD, (SUBSCRIBE, "/site-a/+/#", True), (SUBSCRIBE, PREFIX + "ann/#", True),
    }  # fmt: skip


def test_a_permit_with_obligations_grants_only_the_relay_output() -> None:
    drop = {"id": "drop-fields", "attributes": {"fields": ["customer_id"]}}
    plan = plan_of(repository(data_access("kib", ["/site-b/+/#"], {"groups": ["kibernet"]},
                                          reads("kibernet", obligations=[drop]))))  # fmt: skip
    assert grants(plan, "kib") == {GUARD, (SUBSCRIBE, PREFIX + "kib/#", True)}


def test_a_policy_level_audit_obligation_also_goes_through_the_relay() -> None:
    audit = [{"id": "audit", "fulfill_on": "Permit", "attributes": {"level": "info"}}]
    document = data_access("audited", ["/site-a/#"], {"groups": ["readers"]}, reads("readers"),
                           obligations=audit)  # fmt: skip
    assert (SUBSCRIBE, "/site-a/#", True) not in grants(plan_of(repository(document)), "ann")


@pytest.mark.parametrize(
    ("what", "rule"),
    [
        ("a rule for another group", reads("operators")),
        ("a deny", {"id": "no", "effect": "Deny", "target": {"action": {"id": "subscribe"}}}),
        ("a rule that needs the message",
         reads("readers", condition={"apply": "greater-than",
                                     "args": [{"attr": "resource.value"}, 1]})),
    ],
)  # fmt: skip
def test_nothing_raw_without_a_plain_permit(what: str, rule: dict[str, Any]) -> None:
    plan = plan_of(repository(data_access("p", ["/site-a/#"], {"groups": ["readers"]}, rule)))
    assert (SUBSCRIBE, "/site-a/#", True) not in grants(plan, "ann"), what


def test_a_principal_no_policy_names_gets_nothing_but_the_guard() -> None:
    plan = plan_of(repository(data_access("raw", ["/site-a/#"], {"groups": ["readers"]},
                                          reads("readers"))))  # fmt: skip
    assert grants(plan, "eve") == {GUARD}


def test_the_relay_reads_every_policy_topic_and_alone_publishes_relay_output() -> None:
    plan = plan_of(
        repository(
            data_access("a", ["/site-a/#"], {"groups": ["readers"]}, reads("readers")),
            data_access("b", ["/site-b/+/#"], {"subjects": ["kib"]}, reads("kibernet")),
        ),
        **{"wild": NamedGrants(publish=("#",))},
    )
    assert grants(plan, "pbgm-relay") == {
        (PUBLISH, PREFIX + "#", True), (SUBSCRIBE, "/site-a/#", True),
        (SUBSCRIBE, "/site-b/+/#", True),
    }  # fmt: skip
    wild = plan.client("wild")
    assert wild is not None
    assert Grant(PUBLISH, PREFIX + "#", False, 1000) in wild.grants  # the guard wins over `#`


def test_disabled_accounts_are_disabled_clients_with_their_own_passwords() -> None:
    plan = plan_of(repository())
    by_name = {c.username: c for c in plan.clients}
    assert by_name["off"].enabled is False and by_name["ann"].enabled is True
    assert by_name["ann"].password == broker_password(SECRET, "ann")
    assert len({c.password for c in plan.clients}) == len(plan.clients)
    assert "password" not in repr(by_name["ann"]).replace("password=", "")


def test_an_expired_policy_grants_nothing_and_says_when_to_look_again() -> None:
    expired = data_access("old", ["/site-a/#"], {"groups": ["readers"]}, reads("readers"),
                          valid_until="2026-05-01T00:00:00Z")  # fmt: skip
    coming = data_access("new", ["/site-c/#"], {"groups": ["readers"]}, reads("readers"),
                         valid_from="2026-06-01T12:00:30Z")  # fmt: skip
    store = repository(expired, coming)
    assert (SUBSCRIBE, "/site-a/#", True) not in grants(plan_of(store), "ann")
    assert (SUBSCRIBE, "/site-c/#", True) not in grants(plan_of(store), "ann")
    assert read_directory(store, NOW).valid_for_s == pytest.approx(30.0)


def test_retiring_the_policy_withdraws_the_grant() -> None:
    store = repository(data_access("raw", ["/site-a/#"], {"groups": ["readers"]},
                                   reads("readers")))  # fmt: skip
    PolicyAdministrationPoint(store).retire("raw", actor="t")
    assert grants(plan_of(store), "ann") == {GUARD}


def test_the_example_configuration_reads() -> None:
    from pathlib import Path

    from adapters.broker import BrokerConfig

    config = BrokerConfig.load(Path(__file__).resolve().parents[3] / "examples" / "broker.yaml")
    assert (config.relay_principal, config.relay_prefix) == ("pbgm-relay", PREFIX)
    assert config.named["pmu-gateway"].publish[0] == "/edgeflex/#"
    assert config.notices_topic == "pbgm/changes"


@pytest.mark.parametrize(
    ("what", "change", "says"),
    [
        ("an unknown key", {"relays": {}}, "`$.relays` is not a known setting"),
        ("a wildcard in the prefix", {"relay": {"prefix": "pbgm/#/"}}, "`$.relay.prefix`"),
        ("a bad filter", {"principals": {"x": {"publish": ["a/#/b"]}}}, "`$.principals.x"),
        ("the admin's topics", {"principals": {"x": {"subscribe": ["$CONTROL/#"]}}}, "admin"),
        ("another broker", {"broker": {"kind": "hivemq", "bus": {}}}, "`$.broker.kind`"),
    ],
)
def test_a_bad_configuration_names_the_key(what: str, change: dict[str, Any], says: str) -> None:
    from pathlib import Path

    from adapters.broker._config import from_mapping
    from pbgm.errors import ConfigurationError

    base = {"broker": {"bus": {"host": "h"}}, "password_secret_file": "s"}
    with pytest.raises(ConfigurationError) as raised:
        from_mapping({**base, **change}, base_dir=Path())
    assert says in raised.value.message, what
