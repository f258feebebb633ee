"""The `pbgm` command line: repository administration, decisions, FlexOffer checks.

Global options: `--db URL` (default `$PBGM_DATABASE_URL`, else `sqlite:///pbgm.db`),
`--actor NAME` (default `$PBGM_ACTOR`, else the OS user) recorded in the audit log,
`--json` for machine-readable output on stdout.

Exit statuses, decided in one place (`exit_status`):

====  ==========================================================
0     success; `decide`: Permit; `flexoffer validate`: valid
1     unexpected failure (a bug: please report it)
2     usage error (unknown option, missing argument)
3     unreadable input: malformed JSON/YAML, bad id, too large
4     validation failed (every problem is listed) or invalid offer
5     not found
6     conflict: stale version, or the object already exists
7     the repository cannot be reached
8     permission denied
9     configuration error
10    `decide`: Deny
11    `decide`: NotApplicable (no policy applies; a PEP denies)
12    `decide`: Indeterminate (an error; a PEP denies)
13    the operator's network API failed or refused (`pbgm device`); a group
      action on which not every device succeeded
====  ==========================================================

`--json` works before the command (`pbgm --json policy list`) and after it
(`pbgm policy list --json`). Errors are printed as `error: <code>: <message>`, one
problem per line after it,
never with a traceback (set `PBGM_DEBUG=1` to see one for an unexpected failure).
"""

from pbgm.cli import (  # noqa: F401  (registers the commands)
    _accounts,
    _admin,
    _decide,
    _devices,
    _events,
    _gui,
    _keys,
    _loader,
    _logs,
    _policy,
    _serve,
    _xacml,
)
from pbgm.cli._app import DECISION_STATUS, EXIT_STATUS, exit_status, json_everywhere, main, report

json_everywhere(main)

__all__ = ["DECISION_STATUS", "EXIT_STATUS", "exit_status", "main", "report"]
