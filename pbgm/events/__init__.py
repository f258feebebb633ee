"""The event service: listens to the bus, asks the PDP, performs the obligations.

`EventService` (built from an `EventServiceConfig`, or by `open_event_service`)
subscribes to measurement, data-request and grid-state topics, builds a `Request`
for each message (payload attributes, RoCoF and power step over windows, time),
decides it with the policy group of the subscription and discharges the
obligations through handlers, deny-biased (`pbgm.pep`): return data to the
requester, run a grid service, revoke access, publish a notification, and the
transforming obligations of `data_access` policies. `service_trigger` policies
start grid services when their event conditions hold. Run it with
`pbgm events run --config FILE`; `examples/events.yaml` shows every setting.

Core module: no paho, no numpy. Grid services and the MQTT bus are found at run
time (entry-point groups `pbgm.services` and `pbgm.bus`).
"""

from pbgm.events._audit import AuditThrottle, Due, audit_object_id
from pbgm.events._bounded import BoundedMap
from pbgm.events._build import JwksFile, load_policies, open_event_service, token_verifier
from pbgm.events._config import KINDS, EventServiceConfig, JwtConfig, SubscriptionConfig
from pbgm.events._handlers import Counters, Event, EventHandler
from pbgm.events._policies import PolicyCache
from pbgm.events._samples import Sample, SignalNames, TopicHistory, flatten, sample_time, slope
from pbgm.events._service import EventService
from pbgm.events._services import (
    SERVICE_ENTRY_POINT_GROUP,
    GridService,
    ServiceFactory,
    ServiceRegistry,
    ServiceRun,
)
from pbgm.events._transform import (
    METHODS,
    TRANSFORMS,
    Delivery,
    Downsampler,
    aggregate,
    downsample,
    rename_topic,
    transform_handlers,
)
from pbgm.events._triggers import Condition, Trigger, TriggerState, trigger_of, triggers_of

__all__ = [
    "KINDS",
    "METHODS",
    "SERVICE_ENTRY_POINT_GROUP",
    "TRANSFORMS",
    "AuditThrottle",
    "BoundedMap",
    "Condition",
    "Counters",
    "Delivery",
    "Downsampler",
    "Due",
    "Event",
    "EventHandler",
    "EventService",
    "EventServiceConfig",
    "GridService",
    "JwksFile",
    "JwtConfig",
    "PolicyCache",
    "Sample",
    "ServiceFactory",
    "ServiceRegistry",
    "ServiceRun",
    "SignalNames",
    "SubscriptionConfig",
    "TopicHistory",
    "Trigger",
    "TriggerState",
    "aggregate",
    "audit_object_id",
    "downsample",
    "flatten",
    "load_policies",
    "open_event_service",
    "rename_topic",
    "sample_time",
    "slope",
    "token_verifier",
    "transform_handlers",
    "trigger_of",
    "triggers_of",
]
