"""`PlanSettings` made in code are read as the configuration's `relay` and `principals`
are (`adapters.broker._config`): a value the file would be refused for is a
`ConfigurationError` naming the field when the settings are made, not a command the
broker refuses at every sync, nor a grant it should never give (no broker needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from adapters.broker import BrokerConfig, BrokerSync, NamedGrants, PlanSettings, broker_password
from adapters.broker._cli import _NoBroker, _settings
from adapters.broker._config import from_mapping
from pbgm.errors import ConfigurationError
from pbgm.testing import memory_store

ROOT = Path(__file__).resolve().parents[3]
SECRET = b"s" * 32


def password(principal: str) -> str:
    return broker_password(SECRET, principal)


@pytest.mark.parametrize(
    ("case", "values", "says"),
    [
        ("no password function", {"password": "hunter2"}, "`password`"),
        ("empty relay principal", {"relay_principal": ""}, "`relay_principal`"),
        ("relay principal not a text", {"relay_principal": 7}, "`relay_principal`"),
        ("prefix without its slash", {"relay_prefix": "pbgm/relay"}, "`relay_prefix`"),
        ("a + in the prefix", {"relay_prefix": "pbgm/+/"}, "`relay_prefix`"),
        ("a # in the prefix", {"relay_prefix": "pbgm/#/"}, "`relay_prefix`"),
        ("empty prefix", {"relay_prefix": ""}, "`relay_prefix`"),
        ("named not a mapping", {"named": [("x", NamedGrants())]}, "`named`"),
        ("a bad filter", {"named": {"x": NamedGrants(publish=("a/#/b",))}}, "`named.x.publish"),
        ("an empty filter", {"named": {"x": NamedGrants(subscribe=("",))}},
         "`named.x.subscribe"),
        ("the admin's topics", {"named": {"x": NamedGrants(subscribe=("$CONTROL/#",))}},
         "`named.x`: `$CONTROL`"),
        ("one text for a list (it was read a letter a filter, `#` among them)",
         {"named": {"x": NamedGrants(publish="a/#")}}, "`named.x.publish`"),
        ("grants not NamedGrants", {"named": {"x": ["a/b"]}}, "`named.x`"),
        ("an unknown kind of grant", {"named": {"x": {"receive": ["a/b"]}}}, "`named.x`"),
    ],
)  # fmt: skip
def test_a_bad_value_made_in_code_is_refused_at_once(
    case: str, values: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        PlanSettings(**{"password": password, **values})
    assert says in raised.value.message, case


def _from_example(tmp_path: Path) -> tuple[BrokerConfig, PlanSettings]:
    """The plan settings `pbgm-broker` makes of `examples/broker.yaml`."""
    config = BrokerConfig.load(ROOT / "examples" / "broker.yaml")
    secret = tmp_path / "broker.secret"
    secret.write_bytes(SECRET)
    config = dataclasses.replace(config, password_secret_file=secret)
    return config, _settings(config)


def test_the_settings_of_the_example_pass_unchanged(tmp_path: Path) -> None:
    config, settings = _from_example(tmp_path)
    assert settings.named == config.named
    assert (settings.relay_principal, settings.relay_prefix) == ("pbgm-relay", "pbgm/relay/")
    sync = BrokerSync(memory_store(), _NoBroker(), settings)
    assert sync.settings is settings
    assert dataclasses.replace(settings) == settings


@pytest.mark.parametrize(
    ("case", "values"),
    [
        ("the defaults", {}),
        ("the grants of the enforcement tests", {"named": {
            "meter-gw": NamedGrants(publish=("/site-a/#", "/site-b/#")),
            "wild-gw": NamedGrants(publish=("#",)),
            "ops": NamedGrants(subscribe=("$SYS/#",)),
        }}),
        ("another relay", {"relay_principal": "relay-2", "relay_prefix": "out/"}),
        ("no grants for a name", {"named": {"idle": NamedGrants()}}),
    ],
)  # fmt: skip
def test_good_values_made_in_code_pass_unchanged(case: str, values: dict[str, Any]) -> None:
    named = values.get("named")
    settings = PlanSettings(password=password, **values)
    if named is not None:
        assert settings.named is named, case


def test_named_grants_made_in_code_are_kept_as_the_file_would_give_them() -> None:
    """Lists as tuples, a principal's name as text, a mapping of lists as `NamedGrants`."""
    settings = PlanSettings(
        password=password,
        named={
            "gw": NamedGrants(publish=["/a/#"]),
            1001: {"subscribe": ["/b/+"]},
        },
    )
    assert settings.named == {
        "gw": NamedGrants(publish=("/a/#",)),
        "1001": NamedGrants(subscribe=("/b/+",)),
    }


def test_one_text_for_a_list_in_the_file_is_refused() -> None:
    """`publish: /edgeflex/#` was read a letter a filter: `/`, `e`, ... and `#`."""
    base = {"broker": {"bus": {"host": "h"}}, "password_secret_file": "s"}
    with pytest.raises(ConfigurationError) as raised:
        from_mapping({**base, "principals": {"gw": {"publish": "/edgeflex/#"}}}, base_dir=Path())
    assert "`$.principals.gw.publish` must be a list" in raised.value.message


@pytest.mark.parametrize(
    ("periods", "says"),
    [
        ({"refresh_s": 0}, "`refresh_s`"),  # the sync would spin on the repository
        ({"refresh_s": -1}, "`refresh_s`"),
        ({"recheck_s": float("nan")}, "`recheck_s`"),
        ({"recheck_s": 86_401}, "`recheck_s`"),
        ({"refresh_s": True}, "`refresh_s`"),
    ],
)
def test_a_sync_made_in_code_refuses_the_periods_its_file_would(
    periods: dict[str, Any], says: str, tmp_path: Path
) -> None:
    _, settings = _from_example(tmp_path)
    with pytest.raises(ConfigurationError) as raised:
        BrokerSync(memory_store(), _NoBroker(), settings, **periods)
    assert says in raised.value.message
    with pytest.raises(ConfigurationError):  # the file's reader, the same rule
        from_mapping(
            {"broker": {"bus": {"host": "h"}}, "password_secret_file": "s", **periods},
            base_dir=tmp_path,
        )


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        ("", "a topic filter must be a non-empty string"),
        ("pbgm/#/changes", "`#` must be a whole level"),
        ("pbgm/chan+ges", "`+` must be a whole level"),
        (7, "a topic filter must be a non-empty string"),
    ],
)
def test_a_bad_notices_topic_is_refused_in_code_and_in_the_file(
    topic: Any, says: str, tmp_path: Path
) -> None:
    """Subscribed only when the sync starts (or, empty, silently no notices at all)."""
    _, settings = _from_example(tmp_path)
    with pytest.raises(ConfigurationError) as raised:
        BrokerSync(memory_store(), _NoBroker(), settings, notices_topic=topic)
    assert "`notices_topic`" in raised.value.message
    assert says in raised.value.message
    with pytest.raises(ConfigurationError) as raised:
        from_mapping(
            {"broker": {"bus": {"host": "h"}}, "password_secret_file": "s",
             "notifications": {"topic": topic}},
            base_dir=tmp_path,
        )  # fmt: skip
    assert "`$.notifications.topic`" in raised.value.message


def test_an_unknown_key_of_the_notifications_is_refused() -> None:
    """`notifications: {topc: ...}` gave no notices, and said nothing."""
    with pytest.raises(ConfigurationError) as raised:
        from_mapping(
            {"broker": {"bus": {"host": "h"}}, "password_secret_file": "s",
             "notifications": {"topc": "pbgm/changes"}},
            base_dir=Path(),
        )  # fmt: skip
    assert "`$.notifications`" in raised.value.message


@pytest.mark.parametrize("topic", [None, "pbgm/changes", "pbgm/+/changes", "$share/sync/pbgm/#"])
def test_a_notices_topic_or_filter_is_taken(topic: str | None, tmp_path: Path) -> None:
    _, settings = _from_example(tmp_path)
    BrokerSync(memory_store(), _NoBroker(), settings, notices_topic=topic)
    notices = {} if topic is None else {"notifications": {"topic": topic}}
    config = from_mapping(
        {"broker": {"bus": {"host": "h"}}, "password_secret_file": "s", **notices},
        base_dir=tmp_path,
    )
    assert config.notices_topic == topic
