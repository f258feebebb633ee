"""Settings: read from `PBGM_*` variables or a file, validated once, every bad one listed;
the app factory wires without touching the network or the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbgm.api import Settings, create_app, load_settings
from pbgm.errors import ConfigurationError


def test_defaults_without_any_variable():
    assert load_settings({}) == Settings()


def test_variables_are_parsed():
    settings = load_settings(
        {
            "PBGM_DATABASE_URL": "postgresql://pbgm@db/pbgm",
            "PBGM_WORKERS": "4",
            "PBGM_METRICS_PUBLIC": "false",
            "PBGM_AUDIT_MASK": "subject.*, resource.location",
            "PBGM_BIND": "0.0.0.0:8443",
            "HOME": "/root",
        }
    )
    assert settings.database_url == "postgresql://pbgm@db/pbgm"
    assert (settings.workers, settings.metrics_public, settings.bind) == (4, False, "0.0.0.0:8443")
    assert settings.audit_mask == ("subject.*", "resource.location")


def test_every_bad_setting_is_listed_at_once(tmp_path: Path):
    with pytest.raises(ConfigurationError) as raised:
        load_settings(
            {
                "PBGM_WORKERS": "many",
                "PBGM_MAX_BATCH": "0",
                "PBGM_AUDIT_MASK": "password",
                "PBGM_METRICS_PUBLIC": "perhaps",
                "PBGM_BIND": "nowhere",
                "PBGM_TLS_CERT": str(tmp_path / "missing.pem"),
            }
        )
    paths = {p["path"] for p in raised.value.details["problems"]}
    assert paths == {
        "PBGM_WORKERS",
        "PBGM_MAX_BATCH",
        "PBGM_AUDIT_MASK",
        "PBGM_METRICS_PUBLIC",
        "PBGM_BIND",
        "PBGM_TLS_KEY",
        "PBGM_TLS_CERT",
    }
    assert raised.value.code == "configuration_error"


def test_a_file_is_read_and_variables_win(tmp_path: Path):
    config = tmp_path / "api.yaml"
    config.write_text("database_url: sqlite:///from-file.db\nmax_batch: 7\n")
    settings = load_settings({"PBGM_CONFIG": str(config), "PBGM_MAX_BATCH": "9"})
    assert (settings.database_url, settings.max_batch) == ("sqlite:///from-file.db", 9)


def test_an_unknown_key_in_the_file_is_a_bad_setting(tmp_path: Path):
    config = tmp_path / "api.json"
    config.write_text('{"databse_url": "sqlite:///typo.db"}')
    with pytest.raises(ConfigurationError) as raised:
        load_settings({}, file=config)
    assert raised.value.details["problems"][0]["code"] == "unknown_setting"


def test_the_factory_wires_without_connecting(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'never-created.db'}"
    app = create_app({"database_url": url, "keys_dir": str(tmp_path / "keys")})
    assert not (tmp_path / "never-created.db").exists()
    assert not (tmp_path / "keys").exists()
    reply = app.test_client().get("/healthz")
    assert reply.status_code == 200
    assert app.test_client().get("/readyz").status_code == 503


def test_two_apps_share_no_state(tmp_path: Path):
    public = {"database_url": "memory://", "keys_dir": str(tmp_path), "metrics_public": True}
    first, second = create_app(public), create_app(public)
    first.test_client().get("/healthz")
    assert (
        first.extensions["pbgm"].metrics.registry is not second.extensions["pbgm"].metrics.registry
    )
    text = second.test_client().get("/metrics").get_data(as_text=True)
    assert 'endpoint="ops.healthz"' not in text
