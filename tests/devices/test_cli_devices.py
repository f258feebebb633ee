"""`pbgm device ...` on a SQLite repository against a CAMARA operator on a real socket:
the same decisions and records as the REST API, exit statuses that say what happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbgm.cli import main
from pbgm.store.sql import SqlStore
from pbgm.store.sql.migrate import upgrade
from tests.camara.server import CLIENT_ID, CLIENT_SECRET, CamaraServer, device_key
from tests.devices.world import camara_device, seed


@pytest.fixture
def cli(camara: CamaraServer, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'pbgm.db'}"
    upgrade(url)
    store = SqlStore(url)
    seed(store, devices=3)
    store.close()
    (tmp_path / "camara.secret").write_text(CLIENT_SECRET)
    config = tmp_path / "network.yaml"
    config.write_text(
        f"base_url: {camara.url}\ntoken_url: {camara.token_url}\nclient_id: {CLIENT_ID}\n"
        "client_secret_file: camara.secret\ntimeout_s: 2\nretries: 0\n"
    )
    runner = CliRunner()

    def run(*args: str, actor: str = "op-anna"):
        return runner.invoke(
            main,
            ["--db", url, "--actor", actor, *args],
            env={"PBGM_NETWORK_CONFIG": str(config)},
        )

    return run


def test_register_group_and_list(cli):
    added = cli("device", "add", "rtu-9", "--phone", "+4915199999999", "--asset", "feeder-9")
    assert added.exit_code == 0, added.output
    assert cli("device", "group", "create", "rtus", "rtu-9").exit_code == 0
    listed = cli("--json", "device", "list", "--group", "rtus")
    assert [d["id"] for d in json.loads(listed.output)["devices"]] == ["rtu-9"]
    shown = cli("device", "show", "rtu-9")
    assert "phoneNumber=+4915199999999" in shown.output and "groups: rtus" in shown.output


def test_malformed_identifiers_exit_4_with_every_problem(cli):
    result = cli("device", "add", "bad", "--phone", "0151", "--ipv6", "zz::zz::")
    assert result.exit_code == 4
    assert "invalid_phone_number" in result.output and "invalid_ipv6" in result.output


def test_a_session_for_a_device_and_a_denial(cli, camara: CamaraServer):
    started = cli("device", "qos", "pmu-1", "--duration", "600")
    assert started.exit_code == 0, started.output
    assert "qos_profile: LOW_LATENCY" in started.output
    refused = cli("device", "qos", "pmu-2", "--profile", "THROUGHPUT_M", "--duration", "600")
    assert refused.exit_code == 8 and "qos_profile_not_allowed" in refused.output
    eve = cli("device", "qos", "pmu-2", "--duration", "600", actor="op-eve")
    assert eve.exit_code == 8
    assert len(camara.calls("createSession")) == 1
    status = cli("device", "status", "pmu-1")
    assert "qos=LOW_LATENCY until" in status.output


def test_a_group_action_names_the_failures_and_exits_13(cli, camara: CamaraServer):
    camara.unknown.add(device_key(camara_device(2)))
    result = cli("device", "monitor", "--group", "pmus")
    assert result.exit_code == 13
    assert "some (2 of 3 succeeded)" in result.output
    assert "pmu-2: failed: identifier_not_found" in result.output
    status = cli("--json", "device", "status", "--group", "pmus")
    assert json.loads(status.output)["reachable"] == 2


def test_a_network_failure_exits_13_and_says_what_to_do(cli, camara: CamaraServer):
    camara.fail("createSession", 409, "CONFLICT", times=1)
    result = cli("device", "qos", "pmu-1", "--duration", "600")
    assert result.exit_code == 13 and "session_conflict" in result.output
    assert "extend or delete it first" in result.output


def test_device_or_group_not_both(cli):
    assert cli("device", "qos", "pmu-1", "--group", "pmus", "--duration", "60").exit_code == 2
