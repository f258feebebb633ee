"""A network configuration and device settings made in code are checked by the same rules
as those read from a file (`NetworkConfig.__post_init__`, `DeviceSettings.__post_init__`):
a bad one is a `ConfigurationError` naming the setting when it is made, never a call that
sends the client secret over plain HTTP or a sink that expires at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pbgm.devices import DeviceSettings
from pbgm.errors import ConfigurationError
from pbgm.network import NetworkConfig, NetworkConfigError

GOOD: dict[str, Any] = {
    "base_url": "https://operator.example/camara",
    "token_url": "https://operator.example/oauth/token",
    "client_id": "pbgm",
    "client_secret_env": "CAMARA_SECRET",
}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("base_url", "http://operator.example/camara"),  # the token would go in the clear
        ("token_url", "ftp://operator.example/token"),
        ("client_id", ""),
        ("client_secret_file", Path("/run/secret")),  # beside client_secret_env: two sources
        ("timeout_s", 0),
        ("connect_timeout_s", 600),
        ("retries", -1),
        ("retries", True),
        ("concurrency", 0),
        ("sink_url", "http://pbgm.example/notify"),
        ("sink_token_lifetime_s", 5),
        ("application_server", {}),
    ],
)
def test_a_network_configuration_made_in_code_is_checked(setting: str, value: Any):
    with pytest.raises(NetworkConfigError) as raised:
        NetworkConfig(**{**GOOD, setting: value})
    assert [p.path for p in raised.value.problems] == [f"$.{setting}"]
    assert f"`$.{setting}`" in raised.value.message


def test_a_good_network_configuration_made_in_code_or_read_is_the_same():
    made = NetworkConfig(**GOOD, sink_url="https://pbgm.example/notify")
    assert NetworkConfig.from_mapping({**GOOD, "sink_url": "https://pbgm.example/notify"}) == made
    lab = NetworkConfig(**{**GOOD, "base_url": "http://127.0.0.1:8443"})  # http on loopback
    assert lab.base_url == "http://127.0.0.1:8443"


def test_a_read_configuration_lists_unknown_and_bad_settings_together():
    with pytest.raises(NetworkConfigError) as raised:
        NetworkConfig.from_mapping({**GOOD, "retries": 99, "colour": "blue"})
    assert [p.path for p in raised.value.problems] == ["$.colour", "$.retries"]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("policy_group", ""),
        ("topic_prefix", "pbgm/devices"),  # not absolute
        ("topic_prefix", "/pbgm/+/devices"),
        ("concurrency", 0),
        ("batch", 0),
        ("batch", 10_001),
        ("sink_url", "http://pbgm.example/notify"),
        ("sink_token_lifetime_s", -5),  # every sink expired when made
        ("application_server", {}),
    ],
)
def test_device_settings_made_in_code_are_checked(setting: str, value: Any):
    with pytest.raises(ConfigurationError) as raised:
        DeviceSettings(**{setting: value})
    assert [p["path"] for p in raised.value.details["problems"]] == [f"$.{setting}"]


def test_device_settings_from_a_network_configuration_keep_its_values():
    config = NetworkConfig(**GOOD, concurrency=4, sink_url="https://pbgm.example/notify")
    settings = DeviceSettings.from_network(config, topic_prefix="/site-a/devices")
    assert (settings.concurrency, settings.sink_url) == (4, "https://pbgm.example/notify")
    assert settings.topic_prefix == "/site-a/devices" and DeviceSettings().batch == 100
