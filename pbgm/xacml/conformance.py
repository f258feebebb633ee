"""The XACML conformance runner: `python -m pbgm.xacml.conformance DIR`.

Runs every case directory under DIR (a directory holding `Request.xml`, or
`Request.xml.ignore`), in the layout of the XACML 3.0 conformance tests as AuthzForce
keeps them:

- `Policy.xml`, or `Policies/Policy.xml` with the policies its references name beside it;
- `Request.xml` and `Response.xml`: the request is decided against the policy and the
  response compared as XACML defines equality (`pbgm.xacml.responses.same_results`);
- `Request.xml.ignore` (no `Request.xml`): the policy is invalid and must be refused
  when loaded; `Policy.xml.ignore`: the request is invalid and must be refused.

Prints one line per case (`PASS <case>` or `FAIL <case>: <why>`), then
`N passed, N failed` and the time taken; exits 1 when a case fails (2 when DIR holds no
case).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pbgm.errors import PbgmError
from pbgm.xacml.engine import XacmlPdp
from pbgm.xacml.reader import read_policy
from pbgm.xacml.repository import DirectoryRepository
from pbgm.xacml.requests import read_request
from pbgm.xacml.responses import differences, read_response, same_results
from pbgm.xacml.safexml import parse_file


@dataclass(frozen=True, slots=True)
class Outcome:
    case: str
    passed: bool
    why: str = ""


def cases(directory: Path) -> Iterator[Path]:
    """Every case directory under `directory` (itself included), sorted."""
    if _is_case(directory):
        yield directory
        return
    for child in sorted(p for p in directory.iterdir() if p.is_dir()):
        if child.name != "Policies":
            yield from cases(child)


def _is_case(path: Path) -> bool:
    return (path / "Request.xml").is_file() or (path / "Request.xml.ignore").is_file()


def _first(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def load_policy(case: Path) -> XacmlPdp:
    """The decision point of a case's policy (references found in `Policies/`)."""
    policies = case / "Policies"
    root = _first(
        case / "Policy.xml",
        case / "Policy.xml.ignore",
        policies / "Policy.xml",
        policies / "Policy.xml.ignore",
    )
    if root is None:
        raise FileNotFoundError("no Policy.xml")
    repository = (
        DirectoryRepository.of_directory(policies, skip=[root]) if policies.is_dir() else None
    )
    return XacmlPdp(read_policy(parse_file(root), repository))


def run_case(case: Path, now: datetime) -> Outcome:
    name = case.name
    request_file = _first(case / "Request.xml")
    try:
        if request_file is None:  # Request.xml.ignore: the policy must be refused
            try:
                load_policy(case)
            except (PbgmError, ValueError) as exc:
                return Outcome(name, True, f"policy refused: {_reason(exc)}")
            return Outcome(name, False, "the policy is invalid but was accepted")
        if not (case / "Policy.xml").is_file() and (case / "Policy.xml.ignore").is_file():
            try:
                read_request(parse_file(request_file))
            except (PbgmError, ValueError) as exc:
                return Outcome(name, True, f"request refused: {_reason(exc)}")
            return Outcome(name, False, "the request is invalid but was accepted")
        pdp = load_policy(case)
        request = read_request(parse_file(request_file))
        expected = read_response(parse_file(case / "Response.xml"))
        actual = pdp.decide(request, now)
    except (PbgmError, ValueError, FileNotFoundError) as exc:
        return Outcome(name, False, _reason(exc))
    if same_results(expected, actual):
        return Outcome(name, True)
    return Outcome(name, False, differences(expected, actual))


def _reason(exc: Exception) -> str:
    problems = getattr(exc, "problems", ())
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{first.path}: {first.code}: {first.message}{more}"
    return str(getattr(exc, "message", exc))


def run(directory: Path, now: datetime | None = None) -> list[Outcome]:
    moment = now or datetime.now(UTC)
    return [run_case(case, moment) for case in cases(directory)]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pbgm.xacml.conformance DIR", file=sys.stderr)
        return 2
    directory = Path(args[0])
    if not directory.is_dir():
        print(f"error: `{directory}` is not a directory", file=sys.stderr)
        return 2
    started = time.perf_counter()
    outcomes = run(directory)
    seconds = time.perf_counter() - started
    for outcome in outcomes:
        if outcome.passed:
            print(f"PASS {outcome.case}")
        else:
            print(f"FAIL {outcome.case}: {outcome.why}")
    passed = sum(o.passed for o in outcomes)
    print(f"{passed} passed, {len(outcomes) - passed} failed ({seconds:.2f} s)")
    if not outcomes:
        print(f"error: no conformance case under `{directory}`", file=sys.stderr)
        return 2
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
