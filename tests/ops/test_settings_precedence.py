"""One order for every setting: flag > `PBGM_*` variable > settings file > default.

The matrix runs for every field of `Settings`; a new setting without a row here fails
`test_the_matrix_covers_every_setting`.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbgm.cli import main
from pbgm.ops.settings import DEFAULT, ENVIRONMENT, FILE, FLAG, Settings, resolve_settings, setting

FILES = ("cert-a.pem", "cert-b.pem", "cert-c.pem")

# setting: (value in the file, value in the environment, value of the flag); each
# differs from the default and from the others, given as the layer would give it.
VALUES: dict[str, tuple[object, str, object]] = {
    "database_url": ("sqlite:///file.db", "sqlite:///env.db", "sqlite:///flag.db"),
    "keys_dir": ("keys-file", "keys-env", "keys-flag"),
    "token_issuer": ("iss-file", "iss-env", "iss-flag"),
    "token_audience": ("aud-file", "aud-env", "aud-flag"),
    "token_lifetime": (600, "700", 800),
    "max_content_length": (2048, "4096", 8192),
    "max_batch": (5, "6", 7),
    "rate_limit": ("10/second", "20/second", "30/second"),
    "rate_limit_storage": ("memory://a", "memory://b", "memory://c"),
    "proxy_hops": (1, "2", 3),
    "request_timeout": (11, "12", 13),
    "audit_mask": (["subject.*"], "resource.*", "action.*"),
    "audit_max_request": (512, "1024", 4096),
    "audit_retention_days": (30, "31", 32),
    "decision_retention_days": (7, "8", 9),
    "decision_log_queue": (500, "600", 700),
    "metrics_public": (True, "false", True),
    "metrics_dir": ("/tmp/m-file", "/tmp/m-env", "/tmp/m-flag"),
    "log_level": ("debug", "warning", "error"),
    "log_format": ("json", "text", "json"),
    "access_log": (False, "true", False),
    "bind": ("127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"),
    "workers": (3, "4", 5),
    "tls_cert": FILES,
    "tls_key": FILES,
    "gunicorn_config": FILES,
    "notify_bus_url": ("mqtt://file:1883", "mqtt://env:1883", "mqtt://flag:1883"),
    "notify_topic": ("t/file", "t/env", "t/flag"),
    "network_config": FILES,
    "device_policy_group": ("devices-file", "devices-env", "devices-flag"),
    "device_topic_prefix": ("/d/file", "/d/env", "/d/flag"),
}


PARTNER = {"tls_cert": "tls_key", "tls_key": "tls_cert"}
"""Settings only valid together: the partner is given as a flag in every row."""


def partner(name: str) -> dict[str, str]:
    return {PARTNER[name]: "cert-a.pem"} if name in PARTNER else {}


def test_the_matrix_covers_every_setting():
    assert set(VALUES) == {field.name for field in fields(Settings)}


@pytest.mark.parametrize("name", list(VALUES))
def test_neighbouring_layers_differ_so_that_the_order_shows(name, files):
    """The file's value differs from the default and from the environment's, and the
    environment's from the flag's: the matrix below can tell which layer won."""
    in_file, in_env, in_flag = (
        getattr(resolve_settings({name: value, **partner(name)}, {})[0], name)
        for value in VALUES[name]
    )
    assert in_file != getattr(Settings(), name)
    assert in_file != in_env != in_flag


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in FILES:
        (tmp_path / name).write_text("x")
    return tmp_path


def _layers(name: str, given: str, directory: Path) -> tuple[dict, dict, Path]:
    in_file, in_env, in_flag = VALUES[name]
    config = directory / "settings.json"
    config.write_text(json.dumps({name: in_file} if "f" in given else {}))
    environ = {f"PBGM_{name.upper()}": in_env} if "e" in given else {}
    flags = {name: in_flag} if "g" in given else {}
    return {**flags, **(partner(name) if given else {})}, environ, config


EXPECTED_SOURCE = {"": DEFAULT, "f": FILE, "fe": ENVIRONMENT, "feg": FLAG, "e": ENVIRONMENT,
                   "g": FLAG, "fg": FLAG, "eg": FLAG}  # fmt: skip


@pytest.mark.parametrize("given", list(EXPECTED_SOURCE))
@pytest.mark.parametrize("name", list(VALUES))
def test_each_setting_comes_from_the_strongest_layer_that_gives_it(name, given, files):
    """`given`: f = the settings file, e = the environment, g = a flag."""
    flags, environ, config = _layers(name, given, files)
    settings, sources = resolve_settings(flags, environ, file=config)
    source = EXPECTED_SOURCE[given]
    assert sources[name] == source
    expected = {
        DEFAULT: getattr(Settings(), name),
        FILE: _alone(name, VALUES[name][0]),
        ENVIRONMENT: _alone(name, VALUES[name][1]),
        FLAG: _alone(name, VALUES[name][2]),
    }[source]
    assert getattr(settings, name) == expected
    assert setting(name, flags.get(name), environ, file=config) == getattr(settings, name)


def _alone(name: str, value: object) -> object:
    """`value` of setting `name` as parsed."""
    return getattr(resolve_settings({name: value, **partner(name)}, {})[0], name)


def test_the_command_line_reads_the_database_url_from_the_settings_file(tmp_path: Path):
    """The fault of the issue: `--db` had a default that always won over the file."""
    database = tmp_path / "from-file.db"
    config = tmp_path / "pbgm.yaml"
    config.write_text(f"database_url: sqlite:///{database}\n")
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(config), "db", "upgrade"], env={})
    assert result.exit_code == 0, result.output
    assert database.exists()
    result = runner.invoke(main, ["--json", "db", "current"], env={"PBGM_CONFIG": str(config)})
    assert json.loads(result.output)["db"] == f"sqlite:///{database}"
    other = tmp_path / "from-env.db"
    result = runner.invoke(
        main,
        ["--config", str(config), "--json", "db", "current"],
        env={"PBGM_DATABASE_URL": f"sqlite:///{other}"},
    )
    assert json.loads(result.output)["db"] == f"sqlite:///{other}" and result.exit_code == 9
    assert not other.exists()  # read-only: never created


def test_serve_takes_the_file_then_the_environment_then_its_flags(tmp_path: Path):
    from pbgm.cli._app import Env
    from pbgm.cli._serve import serve_settings

    config = tmp_path / "pbgm.yaml"
    config.write_text("database_url: sqlite:///file.db\nworkers: 3\nbind: 127.0.0.1:7001\n")
    env = Env(db_flag=None, actor="t", as_json=False, config=str(config))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PBGM_WORKERS", "4")
        settings, sources = serve_settings(env, bind="127.0.0.1:7002")
    assert (settings.database_url, settings.workers, settings.bind) == (
        "sqlite:///file.db",
        4,
        "127.0.0.1:7002",
    )
    assert (sources["database_url"], sources["workers"], sources["bind"]) == (
        FILE,
        ENVIRONMENT,
        FLAG,
    )


def test_a_bad_value_in_any_layer_is_named(tmp_path: Path):
    config = tmp_path / "pbgm.json"
    config.write_text('{"workers": "many", "log_format": "xml"}')
    from pbgm.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as raised:
        resolve_settings({"max_batch": 0}, {"PBGM_LOG_LEVEL": "loud"}, file=config)
    paths = {p["path"] for p in raised.value.details["problems"]}
    assert paths == {"PBGM_WORKERS", "PBGM_LOG_FORMAT", "PBGM_LOG_LEVEL", "PBGM_MAX_BATCH"}
