"""The loader configuration: what it accepts, and every problem listed at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pbgm.errors import ConfigurationError
from pbgm.loader import Delivery, LoaderConfigError, PolicySpec, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {"LOADER_SECRET": "s3cret"}


def base(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "server": {
            "url": "https://pbgm.example:8443/pbgm",
            "client_id": "svc-voltage",
            "client_secret_env": "LOADER_SECRET",
        },
        "cache_dir": "cache",
        "policies": [
            {"name": "limits", "asset_id": "bess-01", "policy_type": "operational_limits"},
        ],
    }
    data.update(changes)
    return data


def server(**changes: Any) -> dict[str, Any]:
    return base(server={**base()["server"], **changes})


def policy(**entry: Any) -> dict[str, Any]:
    return base(policies=[entry])


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(LoaderConfigError) as caught:
        parse_config(data, environ=ENV)
    return [(p.path, p.code) for p in caught.value.problems]


def test_a_full_configuration_is_read_with_paths_relative_to_its_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    data = base(
        refresh_interval_s=5,
        jitter=0.2,
        backoff={"initial_s": 0.5, "max_s": 60},
        notifications={"topic": "pbgm/changes"},
        bus={"kind": "memory"},
        server={**server()["server"], "client_secret_env": None, "client_secret_file": "secret"},
        policies=[
            {"name": "a", "policy_id": "p", "policy_group": "g", "deliver_to": "on_a"},
            {
                "name": "b",
                "asset_id": "bess-01",
                "policy_type": "operational_limits",
                "deliver_to": {"mqtt_topic": "x/y", "retain": False, "qos": 2},
            },
        ],
    )
    data["server"] = {k: v for k, v in data["server"].items() if v is not None}
    config = parse_config(data, base_dir=tmp_path, environ={})
    assert config.cache_dir == tmp_path / "cache"
    assert config.client_secret_file == tmp_path / "secret"
    assert config.read_secret() == "s3cret"
    assert (config.refresh_interval_s, config.jitter) == (5, 0.2)
    assert (config.backoff_initial_s, config.backoff_max_s) == (0.5, 60)
    assert config.notifications_topic == "pbgm/changes"
    assert config.policies == (
        PolicySpec("a", policy_id="p", policy_group="g", deliver_to=Delivery(callback="on_a")),
        PolicySpec(
            "b",
            asset_id="bess-01",
            policy_type="operational_limits",
            deliver_to=Delivery(mqtt_topic="x/y", retain=False, qos=2),
        ),
    )


def test_defaults() -> None:
    config = parse_config(base(), environ=ENV)
    assert (config.refresh_interval_s, config.timeout_s, config.jitter) == (30, 10, 0.1)
    assert config.notifications_topic is None and config.bus is None
    assert config.policies[0].deliver_to is None


def test_the_secret_is_read_when_needed_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(base(), environ=ENV)
    monkeypatch.setenv("LOADER_SECRET", "rotated")
    assert config.read_secret() == "rotated"
    assert "rotated" not in repr(config)
    monkeypatch.delenv("LOADER_SECRET")
    with pytest.raises(ConfigurationError, match="`LOADER_SECRET`"):
        config.read_secret()


@pytest.mark.parametrize(
    ("what", "data", "expected"),
    [
        ("not a mapping", [1], [("$", "invalid_setting")]),
        (
            "no server",
            {"cache_dir": "c", "policies": []},
            [("$.server", "missing_setting"), ("$.policies", "invalid_setting")],
        ),
        (
            "an empty server section",
            base(server={}),
            [
                ("$.server.url", "missing_setting"),
                ("$.server.client_id", "missing_setting"),
                ("$.server", "missing_secret"),
            ],
        ),
        ("an unknown key", base(refresh=3), [("$.refresh", "unknown_setting")]),
        ("a URL of another scheme", server(url="ftp://x"), [("$.server.url", "invalid_setting")]),
        (
            "plain http to another host (the secret in the clear)",
            server(url="http://pbgm.example:8080"),
            [("$.server.url", "invalid_setting")],
        ),
        (
            "credentials in the URL",
            server(url="https://u:p@x"),
            [("$.server.url", "invalid_setting")],
        ),
        (
            "the secret written inline",
            server(client_secret="hunter2"),
            [("$.server.client_secret", "inline_secret")],
        ),
        (
            "a secret variable that is not set",
            server(client_secret_env="NOT_SET"),
            [("$.server.client_secret_env", "missing_secret")],
        ),
        (
            "a secret file that does not exist",
            server(client_secret_env=None, client_secret_file="/nonexistent/secret"),
            [("$.server.client_secret_file", "invalid_setting")],
        ),
        (
            "both secret sources",
            server(client_secret_file=__file__),
            [("$.server", "missing_secret")],
        ),
        (
            "a CA file that does not exist",
            server(ca_file="no.pem"),
            [("$.server.ca_file", "invalid_setting")],
        ),
        (
            "a refresh interval of zero",
            base(refresh_interval_s=0),
            [("$.refresh_interval_s", "invalid_setting")],
        ),
        (
            "a refresh interval as text",
            base(refresh_interval_s="30"),
            [("$.refresh_interval_s", "invalid_setting")],
        ),
        ("too much jitter", base(jitter=0.9), [("$.jitter", "invalid_setting")]),
        (
            "a backoff that starts above its maximum",
            base(backoff={"initial_s": 10, "max_s": 1}),
            [("$.backoff", "invalid_setting")],
        ),
        ("no cache directory", {**base(), "cache_dir": None}, [("$.cache_dir", "missing_setting")]),
        ("no policies", base(policies=[]), [("$.policies", "invalid_setting")]),
        (
            "a policy by id without its group",
            policy(name="a", policy_id="p"),
            [("$.policies[0]", "invalid_setting")],
        ),
        (
            "a policy by id and by asset",
            policy(
                name="a", policy_id="p", policy_group="g", asset_id="x", policy_type="flexoffer"
            ),
            [("$.policies[0]", "invalid_setting")],
        ),
        (
            "an asset without a type",
            policy(name="a", asset_id="bess-01"),
            [("$.policies[0]", "invalid_setting")],
        ),
        (
            "an unknown policy type",
            policy(name="a", asset_id="b", policy_type="limits"),
            [("$.policies[0].policy_type", "invalid_setting")],
        ),
        (
            "a name that cannot be a file name",
            policy(name="../etc/passwd", policy_id="p", policy_group="g"),
            [("$.policies[0].name", "invalid_setting")],
        ),
        (
            "a delivery topic with a wildcard",
            policy(name="a", policy_id="p", policy_group="g", deliver_to={"mqtt_topic": "a/#"}),
            [("$.policies[0].deliver_to.mqtt_topic", "invalid_setting")],
        ),
        (
            "a delivery with a bad QoS",
            policy(
                name="a", policy_id="p", policy_group="g", deliver_to={"mqtt_topic": "t", "qos": 3}
            ),
            [("$.policies[0].deliver_to.qos", "invalid_setting")],
        ),
        (
            "the same name twice",
            base(policies=[{"name": "a", "policy_id": "p", "policy_group": "g"}] * 2),
            [("$.policies", "duplicate_name")],
        ),
    ],
)
def test_a_bad_configuration_is_refused_with_its_problems(
    what: str, data: Any, expected: list[tuple[str, str]]
) -> None:
    assert problems(data) == expected


def test_every_problem_is_listed_at_once() -> None:
    data = base(jitter=2, refresh_interval_s=-1, policies=[{"name": "a"}, "b"])
    found = problems(data)
    assert [path for path, _ in found] == [
        "$.refresh_interval_s",
        "$.jitter",
        "$.policies[0]",
        "$.policies[1]",
    ]


def test_an_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "loader.yaml"
    path.write_text("server: [unclosed")
    with pytest.raises(LoaderConfigError) as caught:
        load_config(path)
    assert caught.value.code == "configuration_error"
    assert caught.value.problems[0].code == "malformed_document"


def test_the_example_configuration_is_valid() -> None:
    config = load_config(ROOT / "examples" / "loader.yaml", environ={"PBGM_LOADER_SECRET": "x"})
    assert [p.name for p in config.policies] == ["bess-limits", "voltage-config"]
    assert config.notifications_topic == "pbgm/changes"
    assert config.bus is not None and config.bus["kind"] == "mqtt"
