"""pbgm control modules: pure numpy/scipy algorithms with typed inputs and outputs.

No pbgm, MQTT or Flask here (an import-linter contract checks it): adapters wire
these controllers to the bus and to policies. Every controller holds its limits
in one slot that `set_limits` replaces atomically; the next step uses them.

* `controls.voltage`: coordinated voltage control (CoVee-style), message helpers
* `controls.mpc`: model predictive voltage control with flexibility requests
* `controls.frequency`: VPP fast frequency response (proportional, triggered) and AGC
* `controls.metering`: frequency regulation metering by RoCoP
* `controls.inertia`: RoCoF event detection and swing-equation inertia estimates
* `controls.feeder`: radial feeder and its linear voltage sensitivities; given the
  feeder, the controllers optimise on its sparse branch-flow (LinDistFlow) form
* `controls.flex`: flexibility request/response messages
* `controls.testing`: power flow and swing-equation simulators for tests
"""

from controls.errors import (
    ControlError,
    InvalidLimitsError,
    InvalidMeasurementError,
    InvalidMessageError,
    InvalidTopologyError,
    SolverError,
)
from controls.feeder import Line, RadialFeeder, Sensitivities, chain_feeder
from controls.flex import FlexSchedule
from controls.frequency import (
    AutomaticGenerationControl,
    FastFrequencyResponse,
    FrequencyLimits,
    FrequencySetpoints,
    TriggeredFastFrequencyResponse,
    TriggeredFfr,
    UnitLimits,
    VppMeasurement,
)
from controls.inertia import (
    EventRejected,
    InertiaEstimate,
    InertiaEstimator,
    InertiaLimits,
    RocofEvent,
    detect_events,
    rocof,
)
from controls.metering import MeteringResult, MeteringThresholds, meter_regulation
from controls.mpc import (
    FlexLimits,
    MpcForecast,
    MpcLimits,
    MpcPlan,
    MpcState,
    MpcVoltageController,
)
from controls.voltage import (
    ControlCosts,
    DgLimits,
    EssLimits,
    VoltageController,
    VoltageLimits,
    VoltageMeasurements,
    VoltageSetpoints,
    from_message,
    to_messages,
)

__all__ = [
    "AutomaticGenerationControl",
    "ControlCosts",
    "ControlError",
    "DgLimits",
    "EssLimits",
    "EventRejected",
    "FastFrequencyResponse",
    "FlexLimits",
    "FlexSchedule",
    "FrequencyLimits",
    "FrequencySetpoints",
    "InertiaEstimate",
    "InertiaEstimator",
    "InertiaLimits",
    "InvalidLimitsError",
    "InvalidMeasurementError",
    "InvalidMessageError",
    "InvalidTopologyError",
    "Line",
    "MeteringResult",
    "MeteringThresholds",
    "MpcForecast",
    "MpcLimits",
    "MpcPlan",
    "MpcState",
    "MpcVoltageController",
    "RadialFeeder",
    "RocofEvent",
    "Sensitivities",
    "SolverError",
    "TriggeredFastFrequencyResponse",
    "TriggeredFfr",
    "UnitLimits",
    "VoltageController",
    "VoltageLimits",
    "VoltageMeasurements",
    "VoltageSetpoints",
    "VppMeasurement",
    "chain_feeder",
    "detect_events",
    "from_message",
    "meter_regulation",
    "rocof",
    "to_messages",
]
