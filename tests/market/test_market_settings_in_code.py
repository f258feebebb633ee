"""`MarketSettings` made in code are checked by `MarketService` as the service's options
are by `MarketSettings.from_options`: a value the options would be refused for is the
same `ConfigurationError` naming the setting when the service is made, not a failed
run for every request (no market needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.market import MarketService, MarketSettings
from adapters.rest import RestEndpoint
from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError
from pbgm.store.memory import MemoryStore

GOFLEX = RestEndpoint("https://market.example/api/v1", name="goflex")
MARKETS = {"goflex": GOFLEX}


@pytest.fixture
def made() -> Iterator[list[MarketService]]:
    services: list[MarketService] = []
    yield services
    for service in services:
        service.close()


def service_of(settings: MarketSettings, made: list[MarketService]) -> MarketService:
    service = MarketService(MemoryBus(), store=MemoryStore(), settings=settings)
    made.append(service)
    return service


@pytest.mark.parametrize(
    ("case", "values", "setting"),
    [
        ("no markets", {"markets": {}}, "markets"),
        ("markets not a mapping", {"markets": [GOFLEX]}, "markets"),
        ("a URL for an endpoint", {"markets": {"goflex": "https://m.example"}}, "markets.goflex"),
        ("an unknown default market", {"default_market": "nordpool"}, "default_market"),
        ("empty policy group", {"policy_group": ""}, "policy_group"),
        ("service id too long", {"service_id": "s" * 256}, "service_id"),
        ("offered_by not a text", {"offered_by": 7}, "offered_by"),
        ("empty requester", {"requester": ""}, "requester"),
        ("empty result topic", {"topic": ""}, "topic"),
        ("a wildcard result topic", {"topic": "/edgeflex/goflex/#"}, "topic"),
        ("a result topic with +", {"topic": "/edgeflex/+/flex_result"}, "topic"),
        ("qos 3", {"qos": 3}, "qos"),
        ("qos as a boolean", {"qos": True}, "qos"),
        ("zero response timeout", {"response_timeout_s": 0}, "response_timeout_s"),
        ("response timeout as text", {"response_timeout_s": "30"}, "response_timeout_s"),
        ("zero poll interval", {"poll_interval_s": 0}, "poll_interval_s"),
        ("poll interval above an hour", {"poll_interval_s": 4000}, "poll_interval_s"),
        ("zero step", {"step_s": 0}, "step_s"),
        ("a fractional step", {"step_s": 1.5}, "step_s"),
        ("negative acceptance time", {"accept_within_s": -1}, "accept_within_s"),
        ("assignment time above a day", {"assign_within_s": 86401}, "assign_within_s"),
    ],
)
def test_a_bad_value_made_in_code_is_refused_when_the_service_is_made(
    case: str, values: dict[str, Any], setting: str, made: list[MarketService]
) -> None:
    settings = MarketSettings(**{"markets": MARKETS, **values})
    with pytest.raises(ConfigurationError) as raised:
        service_of(settings, made)
    assert f"`{setting}`" in raised.value.message, case


OPTIONS = [
    (  # docs/market.md, "Configuration"
        "the documented configuration",
        {
            "policy_group": "flexibility",
            "service_id": "pbgm-market",
            "offered_by": "pbgm-market",
            "topic": "/edgeflex/goflex/flex_result",
            "markets": {
                "goflex": {
                    "base_url": "https://market.example/api/v1",
                    "timeout_s": 5,
                    "retries": 2,
                    "auth": {"mode": "api_key", "header": "X-API-Key",
                             "key": {"env": "GOFLEX_API_KEY"}},
                }
            },
            "default_market": "goflex",
            "response_timeout_s": 30,
            "poll_interval_s": 0.5,
        },
    ),
    (  # examples/market_demo.py
        "the demo",
        {"markets": {"goflex": {"base_url": "http://127.0.0.1:9", "retries": 1}},
         "poll_interval_s": 0.05},
    ),
    (
        "two markets, no default",
        {"markets": {"a": {"base_url": "https://a.example"}, "b": {"base_url": "https://b.example"}}},
    ),
    (
        "every bound",
        {"markets": {"a": {"base_url": "https://a.example"}}, "qos": 0,
         "response_timeout_s": 0.05, "poll_interval_s": 3600, "step_s": 86400,
         "accept_within_s": 0, "assign_within_s": 86400, "requester": "r" * 255},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("case", "options"), OPTIONS)
def test_what_the_reader_makes_passes_unchanged(
    case: str, options: dict[str, Any], made: list[MarketService]
) -> None:
    settings = MarketSettings.from_options(options)
    assert settings.checked() is settings, case
    assert service_of(settings, made).settings is settings


@pytest.mark.parametrize(
    ("case", "values"),
    [
        ("one market named as the default", {"default_market": "goflex"}),
        ("two markets, no default", {"markets": {**MARKETS, "other": GOFLEX}}),
        ("qos 2, whole seconds as numbers", {"default_market": "goflex", "qos": 2,
                                             "response_timeout_s": 10, "step_s": 900.0}),
    ],
)  # fmt: skip
def test_good_values_made_in_code_pass_unchanged(
    case: str, values: dict[str, Any], made: list[MarketService]
) -> None:
    settings = MarketSettings(**{"markets": MARKETS, **values})
    assert service_of(settings, made).settings is settings, case


def test_one_market_made_in_code_is_the_default_as_in_the_options(
    made: list[MarketService],
) -> None:
    """Without a default every run failed `invalid_parameters` unless it named the market."""
    service = service_of(MarketSettings(markets=MARKETS), made)
    assert service.settings.default_market == "goflex"
    assert service.settings.for_run({}).market == "goflex"


def test_a_market_endpoint_made_in_code_is_checked_by_the_endpoint_rules() -> None:
    """The endpoint, not only the settings around it: plain http to another host would
    carry the market's credentials in the clear."""
    remote = RestEndpoint("http://market.example/api/v1", name="goflex")
    with pytest.raises(ConfigurationError) as raised:
        MarketSettings(markets={"goflex": remote}, default_market="goflex").checked()
    assert raised.value.details["problems"][0]["path"] == "$.markets.goflex.base_url"
