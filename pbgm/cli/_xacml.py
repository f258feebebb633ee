"""`pbgm xacml ...`: XACML 3.0 policies in and out of the repository, and decisions.

- `import POLICY.xml|DIR [--group G] [--references DIR] [--dry-run] [--no-publish]`:
  read, check and translate every policy (all or nothing), then import them as a
  bundle (atomic, additive; `--dry-run` shows what would change). References are
  resolved among the files given, in `--references`, then among the repository's
  `access_control` policies.
- `export PATH [--group G]`: each policy group as one `<PolicySet>` of its policies, one
  file per group in the directory PATH (or the file PATH with `--group`).
- `decide POLICY.xml REQUEST.xml|REQUEST.json [--references DIR] [--now T]`: decide a
  XACML request (XML, or the JSON Profile when the file ends in `.json`) against a
  policy file, print the XACML response (as the request was written); exit 0 when every
  decision is Permit, else 10 Deny, 11 NotApplicable, 12 Indeterminate (a request
  that cannot be read is answered Indeterminate with a syntax-error status).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pbgm.bundle import Bundle, import_bundle
from pbgm.bundle import export_bundle as export_store
from pbgm.cli._app import Env, main, parse_now, pass_env
from pbgm.errors import InvalidInputError, PbgmError
from pbgm.model import Decision
from pbgm.policy import parse_policy
from pbgm.xacml import (
    DirectoryRepository,
    XacmlPdp,
    XacmlRequest,
    XacmlResult,
    read_files,
    read_json_request,
    read_policy,
    read_request,
    response_json,
    response_xml,
    write_groups,
)
from pbgm.xacml.names import STATUS_CODES
from pbgm.xacml.safexml import MAX_BYTES, parse_file

_STATUS = {"Permit": 0, "Deny": 10, "NotApplicable": 11, "Indeterminate": 12}


@main.group("xacml")
def xacml() -> None:
    """XACML 3.0: import and export policies, decide XACML requests."""


@xacml.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--group", "policy_group", help="Put every policy in this policy group.")
@click.option(
    "--references",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory of the policies the references name.",
)
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--no-publish", is_flag=True, help="Store new versions as drafts.")
@click.option(
    "--reason", default="XACML import", show_default=True, help="Why, for the version history."
)
@pass_env
def xacml_import(
    env: Env,
    paths: tuple[Path, ...],
    policy_group: str | None,
    references: Path | None,
    dry_run: bool,
    no_publish: bool,
    reason: str,
) -> None:
    """Import XACML policies and policy sets (files or directories), all or nothing."""
    known = [
        parse_policy(record.document)
        for record in env.store.list_policies(policy_type="access_control")
    ]
    imported = read_files(list(paths), group=policy_group, references=references, known=known)
    bundle = Bundle(
        policies=imported.documents,
        policy_groups=imported.groups,
        sources=imported.sources,
    )
    plan = import_bundle(
        env.store,
        bundle,
        actor=env.actor,
        dry_run=dry_run,
        publish=not no_publish,
        reason=reason,
    )
    changes = [{"kind": c.kind, "key": c.key, "action": c.action} for c in plan.changes]
    head = "dry run, nothing changed:" if dry_run else f"imported (revision {plan.revision}):"
    lines = [head, *(f"  {c.action:<9} {c.kind:<12} {c.key}" for c in plan.changed)]
    lines.append("  " + ", ".join(f"{n} {action}" for action, n in plan.counts().items()))
    env.emit({"dry_run": dry_run, "revision": plan.revision, "changes": changes}, lines)


@xacml.command("export")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--group", "policy_group", help="Only this policy group (PATH may be a file).")
@pass_env
def xacml_export(env: Env, path: Path, policy_group: str | None) -> None:
    """Export policy groups as XACML policy sets, one file per group."""
    bundle = export_store(env.store, policy_group=policy_group, include_principals=False)
    texts = write_groups(bundle.policy_groups, bundle.policies)
    written = []
    if policy_group is not None and path.suffix == ".xml":
        path.write_text(texts.get(policy_group, ""), encoding="utf-8")
        written.append(path)
    else:
        path.mkdir(parents=True, exist_ok=True)
        for group_id, text in texts.items():
            target = path / (_file_name(group_id) + ".xml")
            target.write_text(text, encoding="utf-8")
            written.append(target)
    env.emit(
        {"files": [str(p) for p in written], "policies": len(bundle.policies)},
        f"exported {len(bundle.policies)} policies in {len(written)} file(s) to {path}",
    )


def _file_name(group_id: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in group_id)


@xacml.command("decide")
@click.argument("policy_file", metavar="POLICY.xml", type=click.Path(exists=True, path_type=Path))
@click.argument("request_file", metavar="REQUEST.xml", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--references",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory of the policies the references name.",
)
@click.option("--now", help="Decision time, ISO 8601 with a timezone (default: now).")
@pass_env
def xacml_decide(
    env: Env, policy_file: Path, request_file: Path, references: Path | None, now: str | None
) -> None:
    """Decide a XACML request against a XACML policy; print the XACML response."""
    repository = DirectoryRepository.of_directory(references) if references else None
    pdp = XacmlPdp(read_policy(parse_file(policy_file), repository))
    as_json = request_file.suffix == ".json"
    try:
        request = _read_request(request_file, as_json)
    except PbgmError as error:
        results = [XacmlResult("Indeterminate", STATUS_CODES["syntax-error"], error.message)]
    else:
        results = pdp.decide(request, parse_now(now))
    if as_json or env.as_json:
        click.echo(json.dumps(response_json(results), ensure_ascii=False, indent=2))
    else:
        click.echo(response_xml(results), nl=False)
    statuses = [_STATUS[r.decision] for r in results]
    click.get_current_context().exit(next((s for s in statuses if s), 0))


def _read_request(path: Path, as_json: bool) -> XacmlRequest:
    if not as_json:
        return read_request(parse_file(path, "request"))
    data = path.read_bytes()[: MAX_BYTES + 1]
    if len(data) > MAX_BYTES:
        raise InvalidInputError("the request is too large", code="document_too_large")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"the request is not JSON: {exc}") from None
    return read_json_request(document)


__all__ = ["Decision", "xacml"]
