"""Bundles: a repository's policies and principals as files, for review and transport.

Two forms of the same content (`pbgm/bundle/v1`):

- one file (JSON, or YAML when named `.yaml`/`.yml`)::

    {"format": "pbgm/bundle/v1", "policy_groups": [{"id", "policy_combining", "description"}],
     "policies": [<pbgm/v1 documents>], "users": [{"name", "display_name", "enabled"}],
     "groups": [{"name", "description", "members": [...]}],
     "grants": [{"principal_kind", "principal", "target_kind", "target", "permission",
                 "enabled"}]}

- a directory: `bundle.json` (everything but the policies) and one file per policy,
  `policies/<id>.json|.yaml|.yml`.

A user may be written as a bare name. `display_name` (when empty) and `enabled`
(when true) are left out on export. Bundles never carry secrets: no password hashes,
no service-account secrets; service accounts are created with `pbgm` tooling, not
imported. `Bundle` sorts its content itself, so two bundles with the same content
compare equal and export to the same bytes.

`import_bundle` is atomic and additive: it creates and updates, never deletes, and
either everything lands or nothing does.
"""

from pbgm.bundle._format import (
    BUNDLE_FILE,
    FORMAT,
    Bundle,
    BundleGroup,
    bundle_data,
    bundle_from_data,
    read_bundle,
    write_bundle,
)
from pbgm.bundle._transfer import (
    Change,
    ImportPlan,
    check_documents,
    export_bundle,
    import_bundle,
)

__all__ = [
    "BUNDLE_FILE",
    "FORMAT",
    "Bundle",
    "BundleGroup",
    "Change",
    "ImportPlan",
    "bundle_data",
    "bundle_from_data",
    "check_documents",
    "export_bundle",
    "import_bundle",
    "read_bundle",
    "write_bundle",
]
