"""pbgm: Policy-Based Grid Management.

An XACML-style policy engine for Virtual Power Plant platforms: a Policy
Repository (`pbgm.store`), Administration and Access Points (`pbgm.pap`,
`pbgm.access`), a Decision Point (`pbgm.pdp`) and an Enforcement Point
(`pbgm.pep`).

The short path, in one call (`pbgm.embed`)::

    import pbgm

    pdp = pbgm.load_pdp("examples/policies")        # a bundle, or policy documents
    pdp.is_permitted(subject="op-anna", resource={"asset_id": "bess-01"}, action="write")

The names most programs need are here at the top: the decision point and its
friends, the request and response model, the stores, the errors.
"""

from pbgm.access import AccessPoint, Principal
from pbgm.embed import load_pdp
from pbgm.errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    MalformedIdError,
    NotFoundError,
    PbgmError,
    PermissionDeniedError,
    Problem,
    StoreUnavailableError,
    ValidationError,
)
from pbgm.model import (
    Advice,
    Decision,
    Effect,
    Obligation,
    Permission,
    Policy,
    PolicyGroup,
    PolicySet,
    Request,
    Response,
    Rule,
    Status,
    Target,
    utc_now,
)
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pep import PolicyEnforcementPoint
from pbgm.pip import PolicyInformationPoint
from pbgm.store import MemoryStore, Store, open_store

__version__ = "0.1.0"

__all__ = [
    "AccessPoint",
    "Advice",
    "ConfigurationError",
    "ConflictError",
    "Decision",
    "Effect",
    "InvalidInputError",
    "MalformedIdError",
    "MemoryStore",
    "NotFoundError",
    "Obligation",
    "PbgmError",
    "Permission",
    "PermissionDeniedError",
    "Policy",
    "PolicyAdministrationPoint",
    "PolicyDecisionPoint",
    "PolicyEnforcementPoint",
    "PolicyGroup",
    "PolicyInformationPoint",
    "PolicySet",
    "Principal",
    "Problem",
    "Request",
    "Response",
    "Rule",
    "Status",
    "Store",
    "StoreUnavailableError",
    "Target",
    "ValidationError",
    "__version__",
    "load_pdp",
    "open_store",
    "utc_now",
]
