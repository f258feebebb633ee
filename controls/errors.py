"""The errors the control modules raise.

`controls` may not import pbgm (it is a pure numpy/scipy layer), so it has its own
small root, `ControlError`, shaped like `pbgm.errors.PbgmError`: a stable snake_case
`code` and a message for the person fixing the input (lowercase, no final period,
user input in backticks). Adapters map these codes to pbgm errors at the boundary.
`ControlError` subclasses `ValueError` because every case is a bad value.
"""

from __future__ import annotations


class ControlError(ValueError):
    """Root of the control modules' errors."""

    code = "control_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidLimitsError(ControlError):
    """Operational limits that are inconsistent or do not fit the controller's model."""

    code = "invalid_limits"


class InvalidMeasurementError(ControlError):
    """A measurement or forecast that is missing, non-finite or refers to an unknown node."""

    code = "invalid_measurement"


class InvalidMessageError(ControlError):
    """A bus message whose shape does not match the published payload format."""

    code = "invalid_message"


class InvalidTopologyError(ControlError):
    """A feeder description that is not a connected radial network."""

    code = "invalid_topology"


class SolverError(ControlError):
    """The optimiser did not return a solution; no set-points are produced."""

    code = "solver_failed"
