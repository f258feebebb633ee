"""`pbgm-service relay`: the relay run from a config file, on the example policies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.services.relay import make_service
from pbgm.bundle import import_bundle, read_bundle
from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError
from pbgm.testing import sqlite_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
TOPIC = "/location_10003/30025/edgePMU3 ch1 amplitude"


@pytest.fixture
def database(tmp_path: Path) -> str:
    store = sqlite_store(tmp_path / "pbgm.db")
    import_bundle(store, read_bundle(EXAMPLES), actor="test")
    store.close()
    return f"sqlite:///{tmp_path / 'pbgm.db'}"


def test_the_relay_service_forwards_on_permit_and_counts(database: str):
    bus = MemoryBus()
    out: list[dict] = []
    bus.subscribe("/kibernet/#", lambda m: out.append(json.loads(m.payload)))
    route = {"source": "/location_10003/+/#", "subject": "svc-kibernet",
             "destination": "/kibernet", "codec": "time_value"}  # fmt: skip
    service = make_service(
        {"relay": {"store": database, "policy_group": "data-sharing", "routes": [route]}}, bus
    )
    service.start()
    try:
        at = datetime(2026, 3, 2, 8, tzinfo=UTC).isoformat()
        body = {"time": at, "value": 1.0, "customer_id": "c-17"}
        bus.publish(TOPIC, json.dumps(body).encode())
        assert out == [{"time": at, "value": 1.0}]  # the policy drops the customer id
        assert service.state()["forwarded"] == 1
        assert service.policy_revision > 0
    finally:
        service.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"policy_group": "g", "routes": [{}]}, "needs `store` and `policy_group`"),
        ({"store": "memory://", "policy_group": "g", "routes": []}, "non-empty list"),
        ({"store": "memory://", "policy_group": "g", "routes": [{"sauce": "/a"}]}, "relay route"),
    ],
)
def test_a_bad_relay_section_is_a_configuration_error(section, message):
    with pytest.raises(ConfigurationError) as raised:
        make_service({"relay": section}, MemoryBus())
    assert message in raised.value.message


def test_the_command_lists_the_relay():
    assert "relay" in main.commands
