"""XACML 3.0 interoperability: XACML policies, requests and responses in and out of pbgm.

The wing reads XACML into pbgm's model and writes it back; pbgm's one decision core
(`pbgm.decision`, with the XACML data types and functions of `pbgm.functions`) decides.

- `safexml`: XML read safely (no DTD or entities, bounded size and depth).
- `reader`: `<Policy>` and `<PolicySet>` to `pbgm.model.Policy` (`read_policy`), with
  references (`references`: version constraints) resolved through a `repository`
  (`DirectoryRepository`, `PoliciesRepository`); `writer`: pbgm policies and policy
  groups as XACML, with what `envelope` keeps; `elements`: XML element helpers and
  `XacmlError`.
- `requests`: XML and JSON Profile requests (`read_request`, `read_json_request`);
  `responses`: results made, written (`response_xml`, `response_json`), read and compared.
- `engine`: `XacmlPdp`, the context handler deciding XACML requests with pbgm.
- `transfer`: XACML files to pbgm/v1 documents and policy groups to XACML (the CLI's
  `pbgm xacml import|export`); `conformance`: the conformance runner
  (`python -m pbgm.xacml.conformance DIR`); `names`: identifiers.

Imports only the model, the errors, the functions, the decision core and the policy
format (an import-linter contract). docs/xacml.md tells what is supported and how pbgm
reads what XACML leaves open.
"""

from __future__ import annotations

from pbgm.xacml.elements import XacmlError
from pbgm.xacml.engine import XacmlPdp
from pbgm.xacml.reader import read_policy
from pbgm.xacml.repository import DirectoryRepository, PoliciesRepository
from pbgm.xacml.requests import XacmlRequest, read_json_request, read_request
from pbgm.xacml.responses import (
    XacmlResult,
    read_response,
    response_json,
    response_xml,
    same_results,
)
from pbgm.xacml.safexml import parse, parse_file
from pbgm.xacml.transfer import Imported, read_files, write_groups
from pbgm.xacml.writer import group_element, policy_element, xml_text

__all__ = [
    "DirectoryRepository",
    "Imported",
    "PoliciesRepository",
    "XacmlError",
    "XacmlPdp",
    "XacmlRequest",
    "XacmlResult",
    "group_element",
    "parse",
    "parse_file",
    "policy_element",
    "read_files",
    "read_json_request",
    "read_policy",
    "read_request",
    "read_response",
    "response_json",
    "response_xml",
    "same_results",
    "write_groups",
    "xml_text",
]
