"""The device management examples load as written."""

from __future__ import annotations

from pathlib import Path

from pbgm.events import EventServiceConfig
from pbgm.network import NetworkConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_network_configuration_loads():
    config = NetworkConfig.load(EXAMPLES / "network.yaml")
    assert config.kind == "camara" and config.sink_url and config.sink_url.startswith("https://")
    assert config.client_secret_file == EXAMPLES / "camara.secret"


def test_the_example_event_service_listens_to_device_events():
    config = EventServiceConfig.load(EXAMPLES / "device-events.yaml")
    assert config.subscriptions[0].topic == "/pbgm/devices/+/events"
    assert "device-qos-session" in config.services


def test_a_network_configuration_refuses_cleartext_and_lists_every_problem(tmp_path: Path):
    import pytest

    from pbgm.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as raised:
        NetworkConfig.from_mapping(
            {
                "base_url": "http://operator.example",
                "token_url": "ftp://x",
                "client_id": "",
                "sink_url": "http://pbgm.example",
                "retries": 99,
                "colour": "blue",
            }
        )
    paths = {p["path"] for p in raised.value.details["problems"]}
    assert paths >= {
        "$.base_url",
        "$.token_url",
        "$.client_id",
        "$.sink_url",
        "$.retries",
        "$.colour",
        "$.client_secret_file",
    }
