"""The `pbgm/v1` policy format: where a policy is read and checked.

- `documents`: untrusted JSON or YAML in (`load_document`, `load_file`), canonical JSON
  out (`canonical_json`), with limits on size, depth and duplicate keys.
- `syntax`: documents to the frozen model of `pbgm.model` and back (`parse_policy`,
  `dump_policy`, `policy_set_from_documents`), date-times (`parse_datetime`,
  `format_datetime`) and JSON values frozen and thawed (`freeze`, `thaw`, `json_strings`).
- `validate`: every problem of a document with its JSON path (`problems_of`,
  `validate_policy_document`), the content schemas of the policy types
  (`content_schema`, `register_content_check`).
- `schema`: the JSON Schemas of `schemas/` loaded (`load_schema`) and turned into problems.
- `published`: a store's published policies as lazy policies for a decision point
  (`pbgm.policy.published.lazy_policies`).
"""

from __future__ import annotations

from pbgm.policy.documents import (
    canonical_json,
    compact_json,
    config_data,
    load_document,
    load_file,
)
from pbgm.policy.schema import load_schema
from pbgm.policy.syntax import (
    FORMAT,
    dump_policy,
    format_datetime,
    freeze,
    json_strings,
    parse_datetime,
    parse_policy,
    parse_policy_set,
    policy_set_from_documents,
    thaw,
)
from pbgm.policy.validate import (
    content_schema,
    policy_set_problems,
    problems_of,
    register_content_check,
    validate_policy_document,
    validate_policy_set_document,
)

__all__ = [
    "FORMAT",
    "canonical_json",
    "compact_json",
    "config_data",
    "content_schema",
    "dump_policy",
    "format_datetime",
    "freeze",
    "json_strings",
    "load_document",
    "load_file",
    "load_schema",
    "parse_datetime",
    "parse_policy",
    "parse_policy_set",
    "policy_set_from_documents",
    "policy_set_problems",
    "problems_of",
    "register_content_check",
    "thaw",
    "validate_policy_document",
    "validate_policy_set_document",
]
