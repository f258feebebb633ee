"""A `Settings` made in code is read as its variables would be, or refused at start.

`Settings(...)` takes any value; `create_app` and `Settings.replace` check it
(`pbgm.ops.settings.validated`). Found: `Settings(rate_limit="0")` (off, as the
variable reads it) reached Flask-Limiter as the rate `0`, and every request answered
`500`; `Settings(workers=0)` was taken as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pbgm.api import create_app
from pbgm.errors import ConfigurationError
from pbgm.ops.settings import Settings
from pbgm.store import MemoryStore


@pytest.mark.parametrize(
    ("field", "given", "read"),
    [
        ("rate_limit", "0", ""),
        ("rate_limit", "off", ""),
        ("rate_limit", "100", "100/minute"),
        ("log_level", "DEBUG", "debug"),
        ("audit_mask", "subject.*, resource.location", ("subject.*", "resource.location")),
        ("access_log", "false", False),
        ("token_lifetime", "600", 600),
    ],
)
def test_a_value_made_in_code_is_read_as_its_variable(field: str, given: Any, read: Any) -> None:
    assert getattr(Settings(**{field: given}).replace(), field) == read


@pytest.mark.parametrize(
    ("field", "given"),
    [
        ("rate_limit", "fast"),
        ("workers", 0),
        ("token_lifetime", -5),
        ("log_format", "xml"),
        ("access_log", "perhaps"),
        ("audit_mask", ("subject",)),
        ("database_url", ""),
        ("bind", 8080),
    ],
)
def test_a_bad_value_made_in_code_is_refused_at_start(field: str, given: Any) -> None:
    with pytest.raises(ConfigurationError) as refused:
        create_app(Settings(**{field: given}), store=MemoryStore())
    paths = [p["path"] for p in refused.value.details["problems"]]
    assert paths == [f"PBGM_{field.upper()}"]


def test_the_rate_limit_off_in_code_serves_requests(tmp_path: Path) -> None:
    settings = Settings(rate_limit="0", keys_dir=str(tmp_path / "keys"))
    client = create_app(settings, store=MemoryStore()).test_client()
    for _ in range(3):
        assert client.get("/api/v1/policies").status_code == 401  # refused, not a 500
    assert "X-RateLimit-Limit" not in client.get("/api/v1/policies").headers
