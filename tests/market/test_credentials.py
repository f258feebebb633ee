"""The market's API key is read from the environment and never shows: not in logs, audit
entries, published results, error messages or the policies as served."""

from __future__ import annotations

import json
import logging
import secrets

import pytest

from adapters.market import MarketService, MarketSettings
from adapters.market.testing import StandInMarket
from controls import FlexSchedule
from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError
from tests.market.helpers import OPENED, RUN, Results, store_with

REQUEST = FlexSchedule("active_power", (5, 6), ((-20.0, -20.0), (-10.0, 0.0))).to_covee()


def keyed(url: str, variable: str) -> MarketSettings:
    auth = {"mode": "api_key", "header": "X-API-Key", "key": {"env": variable}}
    endpoint = {"base_url": url, "auth": auth, "retries": 0}
    return MarketSettings.from_options({"markets": {"goflex": endpoint}, "poll_interval_s": 0.02})


@pytest.mark.parametrize("key_is_right", [True, False])
def test_the_api_key_reaches_the_market_and_nothing_else(monkeypatch, caplog, key_is_right):
    key = f"mk-{secrets.token_urlsafe(24)}"
    monkeypatch.setenv("PBGM_TEST_MARKET_KEY", key if key_is_right else f"{key}-wrong")
    store = store_with()
    bus = MemoryBus()
    results = Results(bus)
    with StandInMarket(api_key=key) as market, caplog.at_level(logging.DEBUG):
        svc = MarketService(bus, store=store, settings=keyed(market.url, "PBGM_TEST_MARKET_KEY"))
        OPENED.append(svc)
        outcome = svc.handle(REQUEST, RUN)
    assert outcome["status"] == ("assigned" if key_is_right else "fallback")
    if not key_is_right:
        assert outcome["reason"] == "market_error"
        assert len(market.requests("POST")) == 1  # a refused key is not tried on every offer
    assert market.requests("POST")[0].headers["X-API-Key"].startswith(key)
    shown = [
        caplog.text,
        json.dumps(results.messages),
        json.dumps([e.details for e in store.list_audit(limit=100)], default=str),
        json.dumps([r.document for r in store.list_policies()], default=str),
        repr(svc.settings),
    ]
    assert not any(key in text for text in shown)


def test_a_missing_secret_is_a_fallback_that_names_the_variable_not_a_value(monkeypatch, caplog):
    monkeypatch.delenv("PBGM_TEST_MARKET_KEY_ABSENT", raising=False)
    bus = MemoryBus()
    with StandInMarket() as market, caplog.at_level(logging.ERROR):
        settings = keyed(market.url, "PBGM_TEST_MARKET_KEY_ABSENT")
        svc = MarketService(bus, store=store_with(), settings=settings)
        outcome = svc.handle(REQUEST, RUN)
    assert outcome["status"] == "fallback" and outcome["reason"] == "market_error"
    assert "PBGM_TEST_MARKET_KEY_ABSENT" in caplog.text
    assert market.requests("POST") == []


def test_a_secret_written_into_the_configuration_is_refused():
    endpoint = {
        "base_url": "http://127.0.0.1:9/api/v1",
        "auth": {"mode": "api_key", "key": "s3cret"},
    }
    with pytest.raises(ConfigurationError) as refused:
        MarketSettings.from_options({"markets": {"goflex": endpoint}})
    assert "s3cret" not in str(refused.value)
