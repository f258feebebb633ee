"""`pbgm events run`: configuration problems are reported with pbgm's exit statuses.

(The full run, until SIGTERM, is in `tests/test_events_mqtt.py` against Mosquitto.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pbgm.cli import main


@pytest.mark.parametrize(
    ("what", "config", "status", "message"),
    [
        ("an unknown setting", "subscriptions: [{topic: /a, kind: measurement}]\nbuss: {}\n",
         9, "`$.buss` is not a known setting"),
        ("no subscriptions", "policies: [p.json]\n", 9, "`$.subscriptions` must be a non-empty"),
        ("a policy file that is missing",
         "policies: [missing.json]\nsubscriptions: [{topic: /a, kind: measurement}]\n",
         9, "does not exist"),
        ("an unknown codec",
         "policies: [p.json]\nsubscriptions: [{topic: /a, kind: measurement, codec: xml}]\n",
         9, "unknown codec `xml`"),
        ("a bus nobody provides",
         "policies: [p.json]\nbus: {kind: carrier-pigeon}\n"
         "subscriptions: [{topic: /a, kind: measurement}]\n",
         9, "no bus implementation named `carrier-pigeon`"),
        ("YAML that is not YAML", "subscriptions: [", 3, ""),
    ],
)  # fmt: skip
def test_configuration_problems_exit_with_their_status(
    tmp_path: Path, what: str, config: str, status: int, message: str
) -> None:
    (tmp_path / "p.json").write_text(
        '{"format": "pbgm/v1", "id": "p", "type": "data_access", "policy_group": "g",'
        ' "rules": [], "content": {"data": {"topics": ["/a"]}, "consumers": {"groups": ["x"]}}}'
    )
    (tmp_path / "events.yaml").write_text(config)
    result = CliRunner().invoke(main, ["events", "run", "--config", str(tmp_path / "events.yaml")])
    assert result.exit_code == status, result.output
    assert message in result.output
    assert "Traceback" not in result.output
