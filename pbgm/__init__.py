"""pbgm: Policy-Based Grid Management.

An XACML-style policy engine for Virtual Power Plant platforms: a Policy
Repository (`pbgm.store`), Administration and Access Points (`pbgm.pap`,
`pbgm.access`), a Decision Point (`pbgm.pdp`) and an Enforcement Point
(`pbgm.pep`).
"""

from pbgm.access import AccessPoint, Principal
from pbgm.errors import (
    ConflictError,
    InvalidInputError,
    MalformedIdError,
    NotFoundError,
    PbgmError,
    Problem,
    ValidationError,
)
from pbgm.model import (
    Advice,
    Decision,
    Effect,
    Obligation,
    Policy,
    PolicySet,
    Request,
    Response,
    Rule,
    Target,
)
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pep import PolicyEnforcementPoint
from pbgm.pip import PolicyInformationPoint

__version__ = "0.1.0"

__all__ = [
    "AccessPoint",
    "Advice",
    "ConflictError",
    "Decision",
    "Effect",
    "InvalidInputError",
    "MalformedIdError",
    "NotFoundError",
    "Obligation",
    "PbgmError",
    "Policy",
    "PolicyAdministrationPoint",
    "PolicyDecisionPoint",
    "PolicyEnforcementPoint",
    "PolicyInformationPoint",
    "PolicySet",
    "Principal",
    "Problem",
    "Request",
    "Response",
    "Rule",
    "Target",
    "ValidationError",
    "__version__",
]
