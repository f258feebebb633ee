"""The KIBERNet data source: a poller that reads a data platform's REST API under policy.

A `data_access` policy names the endpoint (`endpoints`: base URL, auth with a secret
*reference*, timeouts, rate limit), the data points to read (`data_points`: a resource
path such as `/datapoints/{id}/latest` or a query template, where the value and its time
are in the answer, the bus topic and payload format), and the period (`polling`). The
policy loader delivers the policy to `KibernetPoller.apply`; a new version (another
endpoint, other data points, another period) takes effect at once, without a restart.
The endpoint's client (`adapters.rest.RestClient`) is kept while its settings stay.

Each cycle, for every data point:

1. **decide**: the PDP is asked whether `subject` may read this data point now::

       subject  {"id": <subject>, "groups": <configured, or from the store>}
       action   {"id": "poll"}
       resource {"kind": "kibernet", "endpoint", "data_point", "point_id", "path",
                 "topic", "policy_id"}

   Only a Permit whose obligations are all discharged lets the read happen
   (`pbgm.pep`): `drop-fields`, `keep-fields`, `round`, `downsample`, `rename-topic`
   (`pbgm.events`), `mask-fields` (`fields`: values replaced by `***`), `rate-limit`
   (`requests_per_minute` for this subject) and `audit`. A Deny, NotApplicable or an
   obligation nobody handles reads and publishes nothing; it is counted (`denied`,
   `obligation_refused`; Prometheus `pbgm_kibernet_reads_total{endpoint,outcome}`) and
   audited (`kibernet.deny`, at most once per data point and decision per
   `audit_interval_s`).
2. **rate limit**: the endpoint's `rate_limit` (`requests_per_minute`, `burst` per
   second; `limits`, sliding window) and a `Retry-After` the peer asked for; a read
   over the limit is skipped (`rate_limited`).
3. **read**: `GET` with retries on 5xx/429/timeouts and none on other 4xx, bounded
   body (`adapters.rest`). The reading is taken from the answer (`adapters.kibernet._read`):
   a finite number and a time with a zone; a malformed, oversized or wrongly shaped
   answer is refused with its reason logged (`refused_answer`), a failure counted
   (`failed`). A reading not newer than the last one published is not sent again
   (`unchanged`).
4. **publish** after the obligations: `time_value` one `{"time", "value", ...}` per data
   point; `json.edgeflex` one flat `{"<signal>": value, ..., "created": ms}` per topic and
   cycle (the oldest origin time of its readings); `sogno_v4` one device message per
   topic and device.

A data point whose read fails keeps its last good value, which is never re-sent as if it
were new: the poller publishes on the policy's `status_topic` (default
`/pbgm/kibernet/status`) `{"created", "policy_id", "stale": {<data point>: {"topic",
"reason", "value", "time", "age_s"}}}` every cycle while any data point is stale (and
once with `"stale": {}` when all answer again); `stale()` returns the same. The first
failure of a data point is logged with its reason (and never a secret), the recovery
once; the next good read resumes publishing without a restart.

`pbgm-service kibernet --config FILE` runs it (`adapters.kibernet._service`).
"""

from adapters.kibernet._plan import DEFAULT_STATUS_TOPIC, EndpointPlan, Plan, Point
from adapters.kibernet._poller import ACTOR, MASK, KibernetPoller, PointStatus
from adapters.kibernet._read import BadAnswer, Reading, read_answer

__all__ = [
    "ACTOR",
    "DEFAULT_STATUS_TOPIC",
    "MASK",
    "BadAnswer",
    "EndpointPlan",
    "KibernetPoller",
    "Plan",
    "Point",
    "PointStatus",
    "Reading",
    "read_answer",
]
