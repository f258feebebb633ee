"""`pbgm-service kibernet` as it runs: the service on a SQLite repository, its `data_access`
policy fetched from the pbgm API over HTTP (werkzeug on a free port, on the same database)
by the loader the service runner starts (`start_loader`), delivered to the service's
`data_access` sink. An operator's change over REST (a new data point, a data point taken
away) re-configures the running poller without a restart."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.kibernet._service import KibernetService
from adapters.kibernet.standin import KibernetStandIn
from adapters.services._runner import start_loader
from pbgm.access import encode_id
from pbgm.auth.keys import KeyRing
from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import Grant, Permission
from pbgm.testing import FrozenClock
from tests.api.conftest import NOW, SECRET, Server, World, example_store, make_world
from tests.kibernet.conftest import GROUP, POLICY_ID, SUBJECT, Inbox, data_access
from tests.test_loader import loader_config


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The example repository in a SQLite file, served by the API."""
    keys = tmp_path_factory.mktemp("kibernet-keys")
    KeyRing(keys).generate()
    clock = FrozenClock(NOW)
    store = example_store(clock, keys / "pbgm.sqlite")
    running = Server()
    yield make_world(running, keys, store=store, clock=clock)
    running.close()


def test_the_served_loader_drives_the_poller_and_a_rest_change_reconfigures_it(
    world: World, kibernet: KibernetStandIn, tmp_path: Path
) -> None:
    kibernet.set("F3.N5.U", 1.05)
    pap = PolicyAdministrationPoint(world.store, clock=world.clock)
    pap.create(data_access(kibernet.url), actor="test")
    pap.publish(POLICY_ID, actor="test")
    grant = Grant("service", "svc-voltage", "policy_group", GROUP, Permission("read"))
    world.store.add_grant(grant, actor="test")
    (tmp_path / "secret").write_text(SECRET)
    wanted = {"name": "kibernet", "policy_id": POLICY_ID, "policy_group": GROUP,
              "deliver_to": "data_access"}  # fmt: skip
    bus = MemoryBus()
    inbox = Inbox(bus)
    service = KibernetService(bus, {
        "store": world.store.engine.url.render_as_string(), "policy_group": GROUP,
        "subject": SUBJECT, "groups": ["vpp-services"],
    })  # fmt: skip
    poller = service.poller
    assert service.missing_policies() == ["data_access"]
    loader = start_loader(
        loader_config(world.server.port, tmp_path, wanted, refresh_interval_s=3600),
        service, bus, tmp_path,
    )  # fmt: skip
    try:
        inbox.wait(lambda: poller.plan is not None)
        assert service.missing_policies() == []
        assert sorted(p.name for p in poller.plan.points) == ["meter", "n3", "n4"]
        assert poller.poll_once()["published"] == 3
        assert inbox.on("/kib/voltage")[-1]["node_4"] == 1.04

        # The operator adds node 5 and takes the meter away, over REST.
        path = f"/api/v1/admin/policies/{encode_id(POLICY_ID)}"
        current = world.call("GET", path, caller="svc-admin")
        document = copy.deepcopy(current.json["document"])
        points = document["content"]["data_points"]
        points["n5"] = {**points["n4"], "id": "F3.N5.U", "signal": "node_5"}
        del points["meter"]
        put = world.call(
            "PUT", path, caller="svc-admin", json_body=document,
            headers={"If-Match": current.headers["ETag"]},
        )  # fmt: skip
        assert put.status == 200, put.body
        published = world.call("POST", f"{path}/publish", caller="svc-admin", json_body={})
        assert published.status == 200, published.body

        states = loader.refresh_now()
        assert states["kibernet"].state == "fresh"
        assert sorted(p.name for p in poller.plan.points) == ["n3", "n4", "n5"]
        meter_before = len(inbox.on("/kib/meter"))
        kibernet.set("F3.N4.U", 1.045)  # newer readings, so they are published again
        kibernet.set("F3.N3.U", 1.025)
        assert poller.poll_once()["published"] == 3
        assert inbox.on("/kib/voltage")[-1]["node_5"] == 1.05
        assert len(inbox.on("/kib/meter")) == meter_before  # no longer read
    finally:
        loader.stop()
        service.close()


@pytest.mark.parametrize("interval", [-1, "60", float("nan"), 1e9, True])
def test_an_audit_interval_that_is_no_number_of_seconds_is_refused_at_start(
    interval: object, tmp_path: Path
) -> None:
    """The old service took `float()` of it: a text failed with a bare ValueError, a
    negative or NaN interval wrote an audit entry for every reading."""
    config = {"store": f"sqlite:///{tmp_path / 'never-opened.db'}", "policy_group": GROUP,
              "subject": SUBJECT, "audit_interval_s": interval}  # fmt: skip
    with pytest.raises(ConfigurationError) as raised:
        KibernetService(MemoryBus(), config)
    assert "`audit_interval_s`" in raised.value.message
    assert not (tmp_path / "never-opened.db").exists()  # refused before the store opens
