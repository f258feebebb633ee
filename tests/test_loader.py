"""The policy loader against a real pbgm API over HTTP (werkzeug on a free port).

The server holds the example bundle and the callers of `tests/api/conftest.py`;
the loader signs in as `svc-voltage` (read on `operational-limits` and
`voltage-control`) with the secret read from a file, as in production.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pbgm.access import encode_id
from pbgm.auth.keys import KeyRing
from pbgm.bus import MemoryBus
from pbgm.loader import CACHE_FORMAT, LoadedPolicy, PolicyLoader, parse_config
from pbgm.pap import PolicyAdministrationPoint
from pbgm.testing import FrozenClock
from tests.api.conftest import NOW, SECRET, Server, World, make_world

BESS = {"name": "bess", "asset_id": "bess-01", "policy_type": "operational_limits"}
CONFIG = {
    "name": "config",
    "policy_id": "voltage-control-config",
    "policy_group": "voltage-control",
}


@dataclass
class Received:
    """A sink that remembers what it got and signals each arrival."""

    items: list[LoadedPolicy] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, loaded: LoadedPolicy) -> None:
        with self.arrived:
            self.items.append(loaded)
            self.arrived.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> LoadedPolicy:
        with self.arrived:
            found = self.arrived.wait_for(
                lambda: next((i for i in self.items if predicate(i)), None), timeout
            )
        assert found is not None, f"nothing matching arrived in {timeout} s: {self.items}"
        return found


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("loader-keys")
    KeyRing(directory).generate()
    return directory


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


@pytest.fixture
def world(server: Server, key_dir: Path) -> World:
    """A fresh app with the example repository on the module's server."""
    return make_world(server, key_dir)


@pytest.fixture
def own_world(key_dir: Path) -> Iterator[World]:
    """A world on a server of its own, which the test may stop."""
    running = Server()
    yield make_world(running, key_dir)
    if running.thread.is_alive():
        running.close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    return path


def loader_config(
    port: int, tmp_path: Path, *policies: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    server = {
        "url": f"http://127.0.0.1:{port}",
        "client_id": "svc-voltage",
        "client_secret_file": str(tmp_path / "secret"),
        "timeout_s": 5,
    }
    return {
        "server": server,
        "cache_dir": str(tmp_path / "cache"),
        "policies": [dict(p) for p in policies or (BESS, CONFIG)],
        **extra,
    }


def make_loader(
    world_or_port: World | int, tmp_path: Path, *policies: dict[str, Any], **options: Any
) -> tuple[PolicyLoader, Received]:
    port = world_or_port if isinstance(world_or_port, int) else world_or_port.server.port
    settings = {k: v for k, v in options.items() if k not in ("bus", "clock")}
    delivered = [
        dict(p, deliver_to=p.get("deliver_to", "sink")) for p in policies or (BESS, CONFIG)
    ]
    config = parse_config(loader_config(port, tmp_path, *delivered, **settings))
    received = Received()
    loader = PolicyLoader(
        config,
        sinks={"sink": received},
        bus=options.get("bus"),
        clock=options.get("clock") or FrozenClock(NOW),
    )
    return loader, received


def update_limits(world: World, v_max_pu: float) -> int:
    """A new published version of `limits-bess-01` through the PAP; its version."""
    pap = PolicyAdministrationPoint(world.store, clock=world.clock)
    record = world.store.get_policy("limits-bess-01")
    document = json.loads(json.dumps(record.document))
    document["content"]["voltage"]["v_max_pu"] = v_max_pu
    updated = pap.update("limits-bess-01", document, expected_version=record.version, actor="t")
    return pap.publish("limits-bess-01", actor="t", version=updated.version).version


# --- fetch, not modified, change --------------------------------------------------------


def test_fetches_by_asset_and_by_policy_id_and_delivers_each(
    world: World, tmp_path: Path, secret_file: Path
) -> None:
    loader, received = make_loader(world, tmp_path)
    states = loader.refresh_now()
    assert {n: s.state for n, s in states.items()} == {"bess": "fresh", "config": "fresh"}
    by_name = {item.name: item for item in received.items}
    assert by_name["bess"].document["id"] == "limits-bess-01"
    assert by_name["bess"].content["voltage"]["v_max_pu"] == 1.1
    assert by_name["config"].document["type"] == "service_config"
    assert {item.source for item in received.items} == {"server"}
    assert all(item.age_s == 0 and item.version == 1 for item in received.items)


def test_keeps_each_good_copy_on_disk_privately_with_its_fetch_time(
    world: World, tmp_path: Path, secret_file: Path
) -> None:
    loader, _ = make_loader(world, tmp_path)
    loader.refresh_now()
    cache = tmp_path / "cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert sorted(p.name for p in cache.iterdir()) == ["bess.json", "config.json"]
    saved = json.loads((cache / "bess.json").read_text())
    assert stat.S_IMODE((cache / "bess.json").stat().st_mode) == 0o600
    assert saved["format"] == CACHE_FORMAT
    assert saved["fetched_at"] == "2026-03-02T08:00:00Z"
    assert saved["query"] == {"asset_id": "bess-01", "policy_type": "operational_limits"}
    assert saved["document"] == world.store.get_policy("limits-bess-01").published_document


def test_an_unchanged_policy_is_not_delivered_again(
    world: World, tmp_path: Path, secret_file: Path
) -> None:
    clock = FrozenClock(NOW)
    loader, received = make_loader(world, tmp_path, clock=clock)
    loader.refresh_now()
    clock.advance(seconds=30)
    states = loader.refresh_now()
    assert len(received.items) == 2
    assert states["bess"].counters["not_modified"] == 1
    assert states["bess"].counters["fetched"] == 1
    assert states["bess"].age_s == 0  # the 304 confirmed the copy just now
    registry = world.services.metrics.registry
    assert registry.get_sample_value("pbgm_policy_fetches_total", {"result": "not_modified"}) == 2


def test_a_changed_policy_is_delivered_with_its_new_content(
    world: World, tmp_path: Path, secret_file: Path
) -> None:
    loader, received = make_loader(world, tmp_path, BESS)
    loader.refresh_now()
    version = update_limits(world, 1.08)
    states = loader.refresh_now()
    assert [item.version for item in received.items] == [1, version]
    assert received.items[-1].content["voltage"]["v_max_pu"] == 1.08
    assert states["bess"].counters["changed"] == 2
    saved = json.loads((tmp_path / "cache" / "bess.json").read_text())
    assert saved["version"] == version


def test_a_policy_the_client_may_not_read_is_reported_not_served(
    world: World, tmp_path: Path, secret_file: Path
) -> None:
    hidden = {"name": "market", "policy_id": "fo-template-bess-01", "policy_group": "flexibility"}
    loader, received = make_loader(world, tmp_path, hidden)
    state = loader.refresh_now()["market"]
    assert (state.state, state.last_error, state.source) == ("failed", "not_found", None)
    assert received.items == []


def test_refused_credentials_back_off_and_say_why(world: World, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("not-the-secret")
    loader, received = make_loader(world, tmp_path, backoff={"initial_s": 0.2, "max_s": 0.4})
    loader.start()
    time.sleep(1.0)
    loader.stop()
    state = loader.status()["bess"]
    assert (state.state, state.last_error) == ("unreachable", "token_refused")
    assert 1 <= state.counters["errors"] <= 6  # 0.2-0.4 s apart: no retry storm
    assert received.items == []


# --- pbgm unreachable ----------------------------------------------------------------


def test_while_the_server_is_down_the_last_good_copy_is_served_with_its_age(
    own_world: World, tmp_path: Path, secret_file: Path
) -> None:
    clock = FrozenClock(NOW)
    loader, received = make_loader(own_world, tmp_path, clock=clock)
    loader.refresh_now()
    own_world.server.close()
    clock.advance(seconds=120)
    states = loader.refresh_now()
    held = loader.get("bess")
    assert held is not None and held.document["id"] == "limits-bess-01"
    assert (held.source, held.age_s) == ("cache", 120)
    assert states["bess"].state == "unreachable"
    assert states["bess"].last_error == "server_unreachable"
    assert len(received.items) == 2  # nothing new to deliver


def test_a_fresh_start_with_only_the_disk_cache_serves_the_cached_copies(
    own_world: World, tmp_path: Path, secret_file: Path
) -> None:
    first, _ = make_loader(own_world, tmp_path)
    first.refresh_now()
    port = own_world.server.port
    own_world.server.close()
    clock = FrozenClock(NOW)
    clock.advance(hours=2)
    loader, received = make_loader(
        port, tmp_path, clock=clock, backoff={"initial_s": 0.2, "max_s": 0.5}
    )
    loader.start()
    try:
        cached = received.wait_for(lambda item: item.name == "bess", timeout=1)
        time.sleep(0.3)
    finally:
        loader.stop()
    assert (cached.source, cached.age_s, cached.version) == ("cache", 7200, 1)
    assert cached.content["asset_id"] == "bess-01"
    state = loader.status()["bess"]
    assert (state.state, state.source) == ("unreachable", "cache")


@pytest.mark.parametrize(
    ("what", "damage"),
    [
        ("a cache made for another query is not served", {"query": {"asset_id": "pv-inv-01"}}),
        ("a cache of another format is ignored", {"format": "something/v0"}),
        ("a cached document that fails validation is ignored", {"document": {"id": "x"}}),
        ("a cache without its etag is ignored", {"etag": None}),
    ],
)
def test_an_unusable_cache_file_is_not_served(
    world: World, tmp_path: Path, secret_file: Path, what: str, damage: dict[str, Any]
) -> None:
    first, _ = make_loader(world, tmp_path, BESS)
    first.refresh_now()
    path = tmp_path / "cache" / "bess.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **damage}))
    loader, received = make_loader(1, tmp_path, BESS)  # port 1: nothing listens
    loader.load_cache()
    assert loader.get("bess") is None
    assert received.items == []


def test_a_half_written_cache_file_is_ignored(tmp_path: Path, secret_file: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "bess.json").write_text('{"format": "pbgm-loader-cache/v1", "na')
    loader, received = make_loader(1, tmp_path, BESS)
    loader.load_cache()
    assert loader.get("bess") is None and received.items == []


def test_while_unreachable_the_loader_backs_off_instead_of_spinning(
    tmp_path: Path, secret_file: Path
) -> None:
    loader, _ = make_loader(1, tmp_path, BESS, backoff={"initial_s": 0.1, "max_s": 0.4})
    loader.start()
    time.sleep(1.5)
    loader.stop()
    attempts = loader.status()["bess"].counters["errors"]
    # 0.05-0.1, 0.1-0.2, then 0.2-0.4 s apart: at most ~8 attempts in 1.5 s
    assert 2 <= attempts <= 9


# --- propagation of a change made through the admin API ---------------------------------


def admin_update(world: World, v_max_pu: float) -> None:
    """An operator changes the limits over REST: PUT with If-Match, then publish."""
    path = f"/api/v1/admin/policies/{encode_id('limits-bess-01')}"
    current = world.call("GET", path, caller="svc-admin")
    document = current.json["document"]
    document["content"]["voltage"]["v_max_pu"] = v_max_pu
    etag = current.headers["ETag"]
    put = world.call(
        "PUT", path, caller="svc-admin", json_body=document, headers={"If-Match": etag}
    )
    assert put.status == 200, put.body
    published = world.call("POST", f"{path}/publish", caller="svc-admin", json_body={})
    assert published.status == 200, published.body


def test_propagation_by_push_and_by_poll(
    world: World, tmp_path: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pbgm.api._notify import install_change_notifications

    bus = MemoryBus()
    install_change_notifications(world.app, bus, world.store)
    for path in (tmp_path / "push", tmp_path / "poll"):
        path.mkdir()
        (path / "secret").write_text(SECRET)
    pushed, by_push = make_loader(
        world,
        tmp_path / "push",
        BESS,
        bus=bus,
        refresh_interval_s=3600,
        notifications={"topic": "pbgm/changes"},
    )
    polled, by_poll = make_loader(world, tmp_path / "poll", BESS, refresh_interval_s=1)
    with pushed, polled:
        by_push.wait_for(lambda item: item.version == 1)
        by_poll.wait_for(lambda item: item.version == 1)
        started = time.perf_counter()
        admin_update(world, 1.07)
        push = by_push.wait_for(lambda item: item.version == 2)
        push_s = time.perf_counter() - started
        poll = by_poll.wait_for(lambda item: item.version == 2)
        poll_s = time.perf_counter() - started
    with capsys.disabled():
        print(f"\npropagation admin change -> callback: push {push_s:.3f} s, poll {poll_s:.3f} s")
    assert push.content["voltage"]["v_max_pu"] == poll.content["voltage"]["v_max_pu"] == 1.07
    assert push_s < 10 and poll_s < 10
    assert os.path.exists(tmp_path / "push" / "cache" / "bess.json")


# --- a cache bound to its content ------------------------------------------------------


@pytest.mark.parametrize("policy", [BESS, CONFIG], ids=["by asset", "by policy id"])
def test_an_edited_cache_is_not_confirmed_by_the_server(
    world: World, tmp_path: Path, secret_file: Path, policy: dict[str, Any]
) -> None:
    """Edit a value, keep the ETag: the server would answer 304 to that ETag. The copy
    does not match its ETag, so it is not served and the server's copy is fetched."""
    first, _ = make_loader(world, tmp_path, policy)
    first.refresh_now()
    path = tmp_path / "cache" / f"{policy['name']}.json"
    saved = json.loads(path.read_text())
    saved["document"]["description"] = "edited on disk"
    path.write_text(json.dumps(saved))
    loader, received = make_loader(world, tmp_path, policy)
    loader.load_cache()
    assert loader.get(policy["name"]) is None  # the edited copy is never served
    state = loader.refresh_now()[policy["name"]]
    assert (state.state, state.source) == ("fresh", "server")
    [item] = received.items
    assert item.document["description"] != "edited on disk"
    assert state.counters["fetched"] == 1 and state.counters["not_modified"] == 0


def test_an_edited_cache_with_a_matching_etag_gets_the_servers_copy(
    world: World, tmp_path: Path, secret_file: Path
) -> None:
    """An editor who also rewrites the ETag only sends the server an ETag it does not
    have: the server answers with its own copy."""
    from pbgm.access import policy_etag

    first, _ = make_loader(world, tmp_path, CONFIG)
    first.refresh_now()
    path = tmp_path / "cache" / "config.json"
    saved = json.loads(path.read_text())
    saved["document"]["description"] = "edited on disk"
    saved["etag"] = policy_etag(saved["document"]["id"], saved["document"])
    path.write_text(json.dumps(saved))
    loader, received = make_loader(world, tmp_path, CONFIG)
    state = loader.refresh_now()["config"]
    assert state.counters["not_modified"] == 0
    assert received.items[-1].document["description"] != "edited on disk"


def test_an_unreadable_cache_with_the_server_down_says_nothing_is_served(
    tmp_path: Path, secret_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "bess.json").write_text("{not json")
    loader, received = make_loader(1, tmp_path, BESS)  # port 1: nothing listens
    with caplog.at_level("WARNING", logger="pbgm.loader"):
        states = loader.refresh_now()
    assert states["bess"].source is None and received.items == []
    text = caplog.text
    assert "serving the cached copies" not in text
    assert "no copy of `bess` to serve" in text
