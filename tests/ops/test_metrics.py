"""`pbgm.ops.metrics`: a metric is made once per registry and found again by its name."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import CollectorRegistry

from pbgm.api._metrics import Metrics
from pbgm.ops.metrics import counter, exposition, gauge, histogram


def test_asking_again_gives_the_same_metric():
    registry = CollectorRegistry()
    first = counter("pbgm_test_things", "Things", ["kind"], registry=registry)
    assert counter("pbgm_test_things", "Things", ["kind"], registry=registry) is first
    first.labels("a").inc(2)
    assert b'pbgm_test_things_total{kind="a"} 2.0' in exposition(registry)


@pytest.mark.parametrize(
    ("what", "make"),
    [
        ("another type", lambda r: gauge("pbgm_test_clash", "x", ["kind"], registry=r)),
        ("other labels", lambda r: counter("pbgm_test_clash", "x", ["other"], registry=r)),
    ],
)
def test_another_meaning_under_the_same_name_is_refused(what, make):
    registry = CollectorRegistry()
    counter("pbgm_test_clash", "x", ["kind"], registry=registry)
    with pytest.raises(ValueError, match="exists as a counter"):
        make(registry)


def test_every_new_registry_has_its_own_metrics_even_after_others_are_gone():
    """Registries come and go (an app per test); a new one never gets a dead one's metrics."""
    for _ in range(30):
        metrics = Metrics()
        metrics.decisions.labels("Permit", "single").inc()
        histogram("pbgm_test_seconds", "t", registry=metrics.registry).observe(0.1)
        text = metrics.render()
        assert b'pbgm_decisions_total{decision="Permit",kind="single"} 1.0' in text
        assert b"pbgm_test_seconds_count 1.0" in text
        del metrics
        gc.collect()


def test_scrape_hooks_run_before_each_answer():
    metrics = Metrics()
    seen = metrics.gauge("pbgm_test_seen", "Set by a scrape hook")
    metrics.on_scrape(lambda: seen.set(3))
    assert b"pbgm_test_seen 3.0" in metrics.render()


def test_a_collector_read_at_scrape_time_answers_under_several_workers(tmp_path, monkeypatch):
    """Collectors added with `metrics.collector` are in the combined text of the workers
    too (prometheus-client's multiprocess files hold only the counters and gauges)."""
    from prometheus_client.core import GaugeMetricFamily

    class Reads:
        def collect(self):
            yield GaugeMetricFamily("pbgm_test_read", "Read at scrape time", value=7)

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = Metrics()
    metrics.collector(Reads())
    assert b"pbgm_test_read 7.0" in metrics.render()
