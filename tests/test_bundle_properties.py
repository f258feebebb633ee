"""Properties of bundles: export(import(b)) == b, import is idempotent, files round-trip."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbgm.bundle import Bundle, BundleGroup, export_bundle, import_bundle, read_bundle, write_bundle
from pbgm.model import COMBINING_ALGORITHMS, Permission, PolicyGroup
from pbgm.store.base import Grant, User
from pbgm.store.memory import MemoryStore
from pbgm.testing import policy_document

names = st.from_regex(r"[a-z][a-z0-9-]{0,9}", fullmatch=True)
texts = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
topics = st.from_regex(r"[a-z]{1,5}(/[a-z+]{1,4}){0,2}(/#)?", fullmatch=True).filter(
    lambda t: all(level == "+" or "+" not in level for level in t.split("/"))
)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def rules(draw):
    actions = draw(st.lists(st.sampled_from(["read", "write", "submit"]), max_size=3))
    return [
        {
            "id": f"r{i}",
            "effect": draw(st.sampled_from(["Permit", "Deny"])),
            "target": {"action": {"id": action}},
        }
        for i, action in enumerate(actions)
    ]


@st.composite
def policies(draw, group_ids):
    policy_ids = draw(st.lists(names, unique=True, max_size=5))
    docs = []
    for policy_id in policy_ids:
        extra = {}
        if draw(st.booleans()):
            extra["description"] = draw(texts)
        if draw(st.booleans()):
            extra["asset_id"] = draw(names)
        content = {
            "data": {"topics": draw(st.lists(topics, min_size=1, max_size=3, unique=True))},
            "consumers": {"groups": draw(st.lists(names, min_size=1, max_size=2, unique=True))},
        }
        group = draw(st.sampled_from([*group_ids, "loose"]))
        docs.append(
            policy_document(
                policy_id, policy_group=group, rules=draw(rules()), content=content, **extra
            )
        )
    return tuple(docs)


@st.composite
def bundles(draw):
    group_ids = draw(st.lists(names, unique=True, max_size=3))
    policy_groups = tuple(
        PolicyGroup(g, draw(st.sampled_from(COMBINING_ALGORITHMS)), draw(texts)) for g in group_ids
    )
    docs = draw(policies(group_ids))
    user_names = draw(st.lists(names, unique=True, max_size=4))
    users = tuple(User(u, draw(texts), draw(st.booleans())) for u in user_names)
    groups = tuple(
        BundleGroup(
            g,
            draw(texts),
            tuple(draw(st.lists(st.sampled_from(user_names), unique=True))) if user_names else (),
        )
        for g in draw(st.lists(names, unique=True, max_size=3))
    )
    return Bundle(
        policies=docs,
        policy_groups=policy_groups,
        users=users,
        groups=groups,
        grants=draw(grants(users, groups, docs, group_ids)),
    )


@st.composite
def grants(draw, users, groups, docs, group_ids):
    principals = [("user", u.name) for u in users] + [("group", g.name) for g in groups]
    targets = [("policy", d["id"]) for d in docs] + [("policy_group", g) for g in group_ids]
    if not principals or not targets:
        return ()
    made = {}
    for _ in range(draw(st.integers(0, 5))):
        kind, principal = draw(st.sampled_from(principals))
        target_kind, target = draw(st.sampled_from(targets))
        permission = draw(st.sampled_from(list(Permission)))
        grant = Grant(kind, principal, target_kind, target, permission, enabled=draw(st.booleans()))
        made[(kind, principal, target_kind, target, permission)] = grant
    return tuple(made.values())


@SETTINGS
@given(bundles())
def test_export_of_an_imported_bundle_is_the_bundle(bundle):
    store = MemoryStore()
    import_bundle(store, bundle, actor="prop")
    assert export_bundle(store) == bundle


@SETTINGS
@given(bundles(), st.booleans())
def test_a_second_import_is_all_unchanged(bundle, publish):
    store = MemoryStore()
    import_bundle(store, bundle, actor="prop", publish=publish)
    revision = store.revision()
    plan = import_bundle(store, bundle, actor="prop", publish=publish)
    assert plan.is_noop
    assert store.revision() == revision


@settings(max_examples=60, deadline=None)
@given(bundles(), st.sampled_from(["dir", "bundle.json", "bundle.yaml"]))
def test_written_bundles_read_back_equal_and_rewrite_identically(bundle, form):
    with tempfile.TemporaryDirectory() as tmp:
        first = write_bundle(bundle, Path(tmp, "a", form))
        again = read_bundle(first)
        second = write_bundle(again, Path(tmp, "b", form))
        assert again == bundle
        assert _files(first) == _files(second)


def _files(path):
    if path.is_file():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}
