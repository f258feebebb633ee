from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.market.helpers import OPENED


@pytest.fixture(autouse=True)
def _close_services() -> Iterator[None]:
    """Every market service a test made closes its HTTP connections after it."""
    yield
    while OPENED:
        OPENED.pop().close()
