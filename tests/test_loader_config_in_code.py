"""A `LoaderConfig` made in code is held to the rules of the file it could be read from.

Each bad value is refused when a `PolicyLoader` or a `PolicyClient` is made with it
(and by `validated_config` itself), with a `LoaderConfigError` naming its place in
the file form; a good configuration made in code, and those `parse_config` makes of
the repository's examples, pass unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError
from pbgm.loader import (
    Delivery,
    LoaderConfig,
    LoaderConfigError,
    PolicyClient,
    PolicyLoader,
    PolicySpec,
    load_config,
    parse_config,
    validated_config,
)
from pbgm.policy import load_file
from pbgm.testing import FrozenClock
from tests.api.conftest import NOW
from tests.test_loader import loader_config

ROOT = Path(__file__).resolve().parents[1]
SECRET_ENV = "PBGM_TEST_IN_CODE_SECRET"
LIMITS = PolicySpec("limits", asset_id="bess-01", policy_type="operational_limits")
BY_ID = PolicySpec("config", policy_id="p", policy_group="g")
GOOD = LoaderConfig(
    server_url="https://pbgm.example:8443/pbgm",
    client_id="svc-voltage",
    cache_dir=Path("cache"),
    policies=(LIMITS,),
    client_secret_env=SECRET_ENV,
)


def ignore(_loaded: Any) -> None:
    """A callback that takes what it is given."""


def make_loader(config: LoaderConfig) -> Any:
    callbacks = {name: ignore for name in ("cb", "log", "limits", "service_config")}
    return PolicyLoader(config, sinks=callbacks, bus=MemoryBus(), clock=FrozenClock(NOW))


def make_client(config: LoaderConfig) -> Any:
    return PolicyClient(config, clock=FrozenClock(NOW))


CONSUMERS: dict[str, Callable[[LoaderConfig], Any]] = {
    "PolicyLoader": make_loader,
    "PolicyClient": make_client,
    "validated_config": validated_config,
}


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "s3cret")
    monkeypatch.delenv("PBGM_TEST_IN_CODE_NOT_SET", raising=False)


def with_policy(*specs: PolicySpec) -> dict[str, Any]:
    return {"policies": specs}


def delivered(delivery: Delivery) -> dict[str, Any]:
    """The second of two policies delivered so (the problem's path keeps its index)."""
    return with_policy(LIMITS, replace(BY_ID, deliver_to=delivery))


BAD: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("too much jitter", {"jitter": 5}, [("$.jitter", "invalid_setting")]),
    ("negative jitter", {"jitter": -0.1}, [("$.jitter", "invalid_setting")]),
    (
        "a refresh interval of zero",
        {"refresh_interval_s": 0},
        [("$.refresh_interval_s", "invalid_setting")],
    ),
    (
        "a refresh interval as text",
        {"refresh_interval_s": "30"},
        [("$.refresh_interval_s", "invalid_setting")],
    ),
    (
        "a backoff that starts above its maximum",
        {"backoff_initial_s": 10, "backoff_max_s": 1},
        [("$.backoff", "invalid_setting")],
    ),
    (
        "a backoff of zero",
        {"backoff_initial_s": 0},
        [("$.backoff.initial_s", "invalid_setting")],
    ),
    ("a timeout of zero", {"timeout_s": 0}, [("$.server.timeout_s", "invalid_setting")]),
    ("a URL of another scheme", {"server_url": "ftp://x"}, [("$.server.url", "invalid_setting")]),
    ("a URL without host", {"server_url": "https://"}, [("$.server.url", "invalid_setting")]),
    (
        "credentials in the URL",
        {"server_url": "https://u:p@pbgm.example"},
        [("$.server.url", "invalid_setting")],
    ),
    (
        "a query in the URL",
        {"server_url": "https://pbgm.example/?a=1"},
        [("$.server.url", "invalid_setting")],
    ),
    ("an empty client id", {"client_id": " "}, [("$.server.client_id", "invalid_setting")]),
    ("an empty scope", {"scope": ""}, [("$.server.scope", "invalid_setting")]),
    ("no secret source", {"client_secret_env": None}, [("$.server", "missing_secret")]),
    (
        "both secret sources",
        {"client_secret_file": Path(__file__)},
        [("$.server", "missing_secret")],
    ),
    (
        "a secret variable that is not set",
        {"client_secret_env": "PBGM_TEST_IN_CODE_NOT_SET"},
        [("$.server.client_secret_env", "missing_secret")],
    ),
    (
        "a secret file that does not exist",
        {"client_secret_env": None, "client_secret_file": Path("/nonexistent/secret")},
        [("$.server.client_secret_file", "invalid_setting")],
    ),
    (
        "a CA file that does not exist",
        {"ca_file": Path("/nonexistent/ca.pem")},
        [("$.server.ca_file", "invalid_setting")],
    ),
    ("no cache directory", {"cache_dir": None}, [("$.cache_dir", "missing_setting")]),
    (
        "a notification topic with a wildcard",
        {"notifications_topic": "pbgm/#"},
        [("$.notifications.topic", "invalid_setting")],
    ),
    ("a bus that is not a mapping", {"bus": ["mqtt"]}, [("$.bus", "invalid_setting")]),
    ("no policies", {"policies": ()}, [("$.policies", "invalid_setting")]),
    (
        "a policy by neither id nor asset",
        with_policy(PolicySpec("a")),
        [("$.policies[0]", "invalid_setting")],
    ),
    (
        "a policy by id without its group",
        with_policy(PolicySpec("a", policy_id="p")),
        [("$.policies[0]", "invalid_setting")],
    ),
    (
        "a policy by id and by asset",
        with_policy(replace(LIMITS, policy_id="p", policy_group="g")),
        [("$.policies[0]", "invalid_setting")],
    ),
    (
        "an asset without a type",
        with_policy(PolicySpec("a", asset_id="bess-01")),
        [("$.policies[0]", "invalid_setting")],
    ),
    (
        "an unknown policy type",
        with_policy(replace(LIMITS, policy_type="limits")),
        [("$.policies[0].policy_type", "invalid_setting")],
    ),
    (
        "a name that cannot be a file name",
        with_policy(replace(BY_ID, name="../etc/passwd")),
        [("$.policies[0].name", "invalid_setting")],
    ),
    (
        "the same name twice",
        with_policy(BY_ID, replace(LIMITS, name=BY_ID.name)),
        [("$.policies", "duplicate_name")],
    ),
    (
        "a delivery with a bad QoS",
        delivered(Delivery(mqtt_topic="t", qos=7)),
        [("$.policies[1].deliver_to.qos", "invalid_setting")],
    ),
    (
        "a delivery retained by text",
        delivered(Delivery(mqtt_topic="t", retain="yes")),  # type: ignore[arg-type]
        [("$.policies[1].deliver_to.retain", "invalid_setting")],
    ),
    (
        "a delivery topic with a wildcard",
        delivered(Delivery(mqtt_topic="a/+/b")),
        [("$.policies[1].deliver_to.mqtt_topic", "invalid_setting")],
    ),
    (
        "a delivery to nowhere",
        delivered(Delivery()),
        [("$.policies[1].deliver_to.mqtt_topic", "missing_setting")],
    ),
    (
        "a delivery to an empty callback name",
        delivered(Delivery(callback="")),
        [("$.policies[1].deliver_to", "invalid_setting")],
    ),
    (
        "a delivery to a callback and a topic",
        delivered(Delivery(callback="cb", mqtt_topic="t")),
        [("$.policies[1].deliver_to.callback", "unknown_setting")],
    ),
]


@pytest.mark.parametrize("consumer", CONSUMERS, ids=str)
@pytest.mark.parametrize(("what", "changes", "expected"), BAD, ids=[case[0] for case in BAD])
def test_a_bad_value_made_in_code_is_refused_at_construction(
    consumer: str, what: str, changes: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    config = replace(GOOD, **changes)
    with pytest.raises(LoaderConfigError) as caught:
        CONSUMERS[consumer](config)
    assert [(p.path, p.code) for p in caught.value.problems] == expected
    assert f"first at `{expected[0][0]}`" in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)


def test_every_problem_of_a_config_made_in_code_is_listed_at_once() -> None:
    config = replace(GOOD, jitter=2, refresh_interval_s=-1, policies=(PolicySpec("a"),))
    with pytest.raises(LoaderConfigError) as caught:
        make_loader(config)
    assert [p.path for p in caught.value.problems] == [
        "$.refresh_interval_s",
        "$.jitter",
        "$.policies[0]",
    ]


@pytest.mark.parametrize("consumer", CONSUMERS, ids=str)
def test_a_good_config_made_in_code_is_taken_unchanged(consumer: str, tmp_path: Path) -> None:
    config = replace(
        GOOD,
        cache_dir=tmp_path / "cache",
        scope="policies:read",
        timeout_s=5.0,
        refresh_interval_s=1.0,
        jitter=0.0,
        backoff_initial_s=0.5,
        backoff_max_s=60.0,
        notifications_topic="pbgm/changes",
        bus={"kind": "memory"},
        policies=(
            replace(LIMITS, deliver_to=Delivery(mqtt_topic="x/y", retain=False, qos=2)),
            replace(BY_ID, deliver_to=Delivery(callback="cb")),
        ),
    )
    taken = CONSUMERS[consumer](config)
    assert (taken if consumer == "validated_config" else taken.config) == config


def test_files_that_exist_are_taken(tmp_path: Path) -> None:
    """Checked by `validated_config` alone: a client would read the CA file as PEM."""
    (tmp_path / "ca.pem").write_text("-")
    (tmp_path / "secret").write_text("s3cret")
    config = replace(
        GOOD,
        ca_file=tmp_path / "ca.pem",
        client_secret_env=None,
        client_secret_file=tmp_path / "secret",
    )
    assert validated_config(config) == config


def test_a_config_made_in_code_is_taken_as_the_reader_would_read_it() -> None:
    config = replace(GOOD, server_url="https://pbgm.example/pbgm/", client_id=" svc ")
    taken = make_loader(config).config
    assert (taken.server_url, taken.client_id) == ("https://pbgm.example/pbgm", "svc")


def test_the_example_loader_configuration_passes_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PBGM_LOADER_SECRET", "x")
    config = load_config(ROOT / "examples" / "loader.yaml")
    assert validated_config(config) == config
    assert make_loader(config).config == config


def test_the_scenario_loader_section_passes_unchanged(tmp_path: Path) -> None:
    (tmp_path / "service.secret").write_text("s3cret\n")
    section = load_file(ROOT / "examples" / "scenario" / "voltage.yaml")["loader"]
    config = parse_config(section, base_dir=tmp_path, source="the `loader` section")
    assert validated_config(config) == config
    assert make_loader(config).config == config


def test_the_configs_the_loader_tests_make_pass_unchanged(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    config = parse_config(loader_config(8080, tmp_path))
    assert validated_config(config) == config
    assert make_client(config).config == config
