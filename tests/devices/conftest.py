"""Fixtures of the 5G device management tests: a CAMARA operator on a real socket
(`tests.camara.server`) and pbgm's network configuration pointing at it.

The operator's `violations` (requests or answers that break the CAMARA schemas) are
asserted empty when each test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx_auth import OAuth2

from adapters.camara import CamaraNetwork
from pbgm.network import NetworkConfig
from tests.camara.server import CLIENT_ID, CLIENT_SECRET, CamaraServer


@pytest.fixture
def camara() -> Iterator[CamaraServer]:
    # A new operator: tokens cached (process-wide, by httpx-auth) for an earlier one,
    # perhaps on the same port, would be refused once and the call made again, and the
    # tests count calls.
    OAuth2.token_cache.clear()
    server = CamaraServer()
    try:
        yield server
    finally:
        server.close()
    assert server.violations == []


def network_config(camara: CamaraServer, directory: Path, **changes: Any) -> NetworkConfig:
    secret = directory / "camara.secret"
    secret.write_text(CLIENT_SECRET + "\n")
    values: dict[str, Any] = {
        "base_url": camara.url,
        "token_url": camara.token_url,
        "client_id": CLIENT_ID,
        "client_secret_file": str(secret),
        "timeout_s": 2.0,
        "retries": 2,
    }
    values.update(changes)
    return NetworkConfig.from_mapping(values, base_dir=directory)


@pytest.fixture
def config(camara: CamaraServer, tmp_path: Path) -> NetworkConfig:
    return network_config(camara, tmp_path)


@pytest.fixture
def network(config: NetworkConfig) -> Iterator[CamaraNetwork]:
    opened = CamaraNetwork(config)
    yield opened
    opened.close()
