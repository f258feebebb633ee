"""What the voltage-control service reads: its local config, its policies, its inputs.

Kept apart from the running service (`adapters.services.voltage`) so that each mapping
can be read and tested on its own, without a bus or a thread: the `voltage` config
section into the feeder model and the assets, `operational_limits` contents into
`controls.VoltageLimits` (refusing what is invalid or unsafe) and into the plausible
ranges of the inputs (`Plausible`), a `service_config` content into the active
`Source`, and an input payload into per-node values (`node_readings`). The rules are
described in the docstring of `adapters.services.voltage`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.services._inputs import Refusal, plausible
from adapters.services._runner import find_policy, refuse
from controls import (
    ControlError,
    DgLimits,
    EssLimits,
    Line,
    RadialFeeder,
    VoltageLimits,
    chain_feeder,
)
from controls.voltage import DEFAULT_TOPICS, PV_KEY, PV_KEY_ALIASES, VOLTAGE_KEY
from pbgm.errors import ConfigurationError, InvalidInputError

__all__ = [
    "DEFAULT_SOURCE",
    "ENVELOPE_PU",
    "OUTPUTS",
    "PLAUSIBLE_MARGIN_PU",
    "Asset",
    "Plausible",
    "Source",
    "assets_from_config",
    "envelope_from_config",
    "feeder_from_config",
    "input_section",
    "node_readings",
    "plausible_ranges",
    "refuse",
    "source_from_config",
    "voltage_band",
    "voltage_limits",
]

ENVELOPE_PU = (0.85, 1.15)
OUTPUTS = ("reactive_power", "active_power", "active_power_ESS")
PLAUSIBLE_MARGIN_PU = 0.3
PV_MAX_KW = 10_000.0  # a node without a rated asset: no LV or MV feeder node has more PV
TIME_KEYS = frozenset({"created", "time", "timestamp"})
_NODE = re.compile(r"node_(\d{1,9})")


# --- the local configuration -----------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    """A controllable asset of the feeder: a generator (`dg`) or a storage (`ess`)."""

    id: str
    node: int
    kind: str
    curtailable: bool = False


def feeder_from_config(data: Any) -> RadialFeeder:
    """`{v_nominal_v, lines: [[parent, child, r_ohm, x_ohm], ...]}` or `{chain: {...}}`."""
    if not isinstance(data, Mapping):
        raise ConfigurationError("`voltage.feeder` must be a mapping")
    try:
        if "chain" in data:
            return chain_feeder(**data["chain"], v_nominal_v=data.get("v_nominal_v", 400.0))
        lines = tuple(Line(int(p), int(c), float(r), float(x)) for p, c, r, x in data["lines"])
        return RadialFeeder(lines, float(data.get("v_nominal_v", 400.0)))
    except ControlError as error:
        raise ConfigurationError(f"`voltage.feeder`: {error.message}") from None
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError(
            "`voltage.feeder` needs `lines: [[parent, child, r_ohm, x_ohm], ...]` or `chain`"
        ) from None


def assets_from_config(data: Any) -> tuple[Asset, ...]:
    if not isinstance(data, Mapping):
        raise ConfigurationError("`voltage.assets` must map asset ids to `{node, kind}`")
    assets = []
    for asset_id, spec in data.items():
        kind = spec.get("kind") if isinstance(spec, Mapping) else None
        node = spec.get("node") if isinstance(spec, Mapping) else None
        if kind not in ("dg", "ess") or not isinstance(node, int) or isinstance(node, bool):
            raise ConfigurationError(f"asset `{asset_id}` needs an integer `node`, `kind` dg|ess")
        assets.append(Asset(str(asset_id), node, kind, bool(spec.get("curtailable", False))))
    return tuple(assets)


def envelope_from_config(data: Any) -> tuple[float, float]:
    """`voltage.envelope_pu`: `[low, high]`, finite, 0 < low < high; an inverted or NaN
    envelope would refuse every band policy, and the service would never act."""
    if (
        not isinstance(data, list | tuple)
        or len(data) != 2
        or any(isinstance(v, bool) or not isinstance(v, int | float) for v in data)
        or not 0 < data[0] < data[1] < math.inf
    ):
        raise ConfigurationError(
            f"`voltage.envelope_pu` must be `[low, high]` in pu, 0 < low < high, not `{data}`"
        )
    return float(data[0]), float(data[1])


# --- policies -> controller limits -----------------------------------------------------


def voltage_band(content: Mapping[str, Any]) -> tuple[float, float, float]:
    """(v_min, v_max, v_nominal_v): the control targets if given, narrowed by node bands."""
    voltage = content.get("voltage")
    if not isinstance(voltage, Mapping):
        raise refuse("the band policy has no `voltage` section")
    v_min = max(voltage["v_min_pu"], voltage.get("v_target_min_pu", 0.0))
    v_max = min(voltage["v_max_pu"], voltage.get("v_target_max_pu", math.inf))
    for node in (content.get("nodes") or {}).values():
        v_min = max(v_min, node.get("v_min_pu", v_min))
        v_max = min(v_max, node.get("v_max_pu", v_max))
    return float(v_min), float(v_max), float(voltage["v_nominal_v"])


def _asset_limits(
    asset: Asset, own: Mapping[str, Any] | None, node: Mapping[str, Any] | None
) -> DgLimits | EssLimits | None:
    power = (own or {}).get("power") or node
    if not power:
        return None
    if asset.kind == "dg":
        return DgLimits(
            power.get("q_min_kvar", 0.0),
            power.get("q_max_kvar", 0.0),
            power.get("p_max_kw", math.inf),
            asset.curtailable,
        )
    if "p_min_kw" not in power or "p_max_kw" not in power:
        raise refuse(f"storage `{asset.id}` needs `p_min_kw` and `p_max_kw`")
    energy = (own or {}).get("energy") or {}
    return EssLimits(
        power["p_min_kw"],
        power["p_max_kw"],
        energy.get("capacity_kwh"),
        energy.get("soc_min_pct", 0.0) / 100,
        energy.get("soc_max_pct", 100.0) / 100,
    )


def voltage_limits(
    policies: Mapping[str, Mapping[str, Any]],
    assets: tuple[Asset, ...],
    band_from: str,
    envelope: tuple[float, float] = ENVELOPE_PU,
) -> VoltageLimits:
    """Map `operational_limits` contents (by policy id) to the controller's limits.

    Raises `InvalidInputError`: code `limits_incomplete` while the band policy is
    missing, `invalid_limits` when the band leaves the envelope or the contents do not
    make valid limits.
    """
    band = find_policy(policies, band_from)
    if band is None:
        raise refuse(f"no limits policy for `{band_from}` yet", "limits_incomplete")
    try:
        return _map(policies, band, assets, envelope)
    except ControlError as error:
        raise refuse(error.message) from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise refuse(f"limits policy content cannot be read: `{error}`") from None


def _map(
    policies: Mapping[str, Mapping[str, Any]],
    band: Mapping[str, Any],
    assets: tuple[Asset, ...],
    envelope: tuple[float, float],
) -> VoltageLimits:
    v_min, v_max, v_nominal = voltage_band(band)
    if not envelope[0] <= v_min < v_max <= envelope[1]:
        raise refuse(
            f"voltage band `{v_min}`-`{v_max}` pu is not inside the safe envelope "
            f"`{envelope[0]}`-`{envelope[1]}` pu"
        )
    dg: dict[int, DgLimits] = {}
    ess: dict[int, EssLimits] = {}
    nodes = band.get("nodes") or {}
    for asset in assets:
        content = find_policy(policies, asset.id)
        limits = _asset_limits(asset, content, nodes.get(f"node_{asset.node}"))
        if limits is not None:
            if isinstance(limits, DgLimits):
                dg[asset.node] = limits
            else:
                ess[asset.node] = limits
    return VoltageLimits(v_min, v_max, v_nominal, dg, ess)


# --- policies -> plausible inputs ------------------------------------------------------


@dataclass(frozen=True)
class Plausible:
    """What a measurement may be: voltages in pu within `v_pu`, PV power in kW from a
    small negative tolerance up to the node's rating (`pv_max_kw`, else `PV_MAX_KW`)."""

    v_pu: tuple[float, float]
    pv_max_kw: Mapping[int, float] = field(default_factory=dict)

    def pv_range(self, node: int) -> tuple[float, float]:
        top = self.pv_max_kw.get(node, PV_MAX_KW)
        return -0.05 * top, top


def plausible_ranges(
    policies: Mapping[str, Mapping[str, Any]],
    band_from: str,
    envelope: tuple[float, float],
    assets: tuple[Asset, ...] = (),
    margin_pu: float = PLAUSIBLE_MARGIN_PU,
) -> Plausible:
    """The plausible inputs under the operational limits: the voltage band of the band
    policy (`v_min_pu`-`v_max_pu`, not the narrower targets) widened by `margin_pu` on
    each side (while there is no band policy: the safe envelope widened so), and each
    generator's PV power up to 1.5 times its rating (`power.s_max_kva`, else
    `power.p_max_kw`)."""
    voltage = (find_policy(policies, band_from) or {}).get("voltage") or {}
    low = float(voltage.get("v_min_pu", envelope[0]))
    high = float(voltage.get("v_max_pu", envelope[1]))
    ratings: dict[int, float] = {}
    for asset in assets:
        power = (find_policy(policies, asset.id) or {}).get("power") or {}
        rating = power.get("s_max_kva", power.get("p_max_kw"))
        if asset.kind == "dg" and isinstance(rating, int | float) and rating > 0:
            ratings[asset.node] = 1.5 * float(rating)
    return Plausible((max(low - margin_pu, 0.0), high + margin_pu), ratings)


# --- inputs ---------------------------------------------------------------------------


def input_section(message: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """`{key: {"node_3": v}}` (for PV also `pv_measurements`), or the flat form
    `{"node_3": v, "created": ms}`."""
    names = PV_KEY_ALIASES if key == PV_KEY else (key,)
    found = next((name for name in names if name in message), None)
    if found is None:
        return {k: v for k, v in message.items() if k not in TIME_KEYS}
    section = message[found]
    if not isinstance(section, Mapping):
        raise Refusal("malformed", f"`{key}` must be an object of node values")
    return section


def node_readings(
    section: Mapping[str, Any],
    key: str,
    nodes: frozenset[int],
    ranges: Plausible,
) -> tuple[dict[int, float], list[str]]:
    """The values of the feeder's nodes, each plausible, and the names of the nodes
    the feeder model does not have (left out). Raises `Refusal`: `malformed` for a name
    that is no `node_<n>`, `implausible` for a value outside its range, `unknown_nodes`
    when no node of the sample is in the feeder."""
    values: dict[int, float] = {}
    unknown: list[str] = []
    for name, value in section.items():
        match = _NODE.fullmatch(name) if isinstance(name, str) else None
        if match is None:
            raise Refusal("malformed", f"`{str(name)[:40]}` is not a node name `node_<n>`")
        node = int(match.group(1))
        if node not in nodes:
            unknown.append(name)
            continue
        low, high = ranges.v_pu if key == VOLTAGE_KEY else ranges.pv_range(node)
        values[node] = plausible(value, low, high, f"`{key}.{name}`")
    if not values and unknown:
        shown = ", ".join(f"`{n}`" for n in unknown[:3])
        raise Refusal("unknown_nodes", f"no node of the sample is in the feeder ({shown})")
    if not values:
        raise Refusal("malformed", f"`{key}` names no node")
    return values, unknown


# --- the data source -------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The active data source and outputs of one `service_config` version."""

    name: str
    topics: Mapping[str, str]
    qos: int
    outputs: Mapping[str, str]
    period_s: float | None
    on_missing: str
    input_timeout_s: float | None
    format: str = "json"
    kind: str = "mqtt"
    data_access_policy: str | None = None


DEFAULT_SOURCE = Source(
    "default",
    {k: DEFAULT_TOPICS[k] for k in (VOLTAGE_KEY, PV_KEY)},
    1,
    {k: DEFAULT_TOPICS[k] for k in OUTPUTS},
    None,
    "hold_last",
    None,
)


def source_from_config(content: Mapping[str, Any], service: str) -> Source:
    """The active source of a `service_config` content: an `mqtt` source, or a `rest`
    source (KIBERNet) whose readings the KIBERNet poller of its `data_access_policy`
    publishes on the source's `topics`."""
    if content.get("service") != service:
        raise InvalidInputError(
            f"configuration for `{content.get('service')}`, not `{service}`", code="invalid_config"
        )
    name = content.get("active_source")
    source = (content.get("data_sources") or {}).get(name)
    if not isinstance(source, Mapping):
        raise InvalidInputError(f"active source `{name}` is not defined", code="invalid_config")
    kind = source.get("kind")
    if kind == "rest" and not (
        source.get("data_access_policy") and VOLTAGE_KEY in (source.get("topics") or {})
    ):
        raise InvalidInputError(
            f"source `{name}` of kind `rest` is read by the KIBERNet poller "
            "(`adapters.kibernet`): name its `data_access_policy` and the `topics` the "
            f"poller publishes on, with a `{VOLTAGE_KEY}` topic",
            code="unsupported_source",
        )
    if kind not in ("mqtt", "rest") or VOLTAGE_KEY not in (source.get("topics") or {}):
        raise InvalidInputError(
            f"source `{name}` must be an `mqtt` source with a `{VOLTAGE_KEY}` topic",
            code="unsupported_source",
        )
    fallback = content.get("fallback") or {}
    return Source(
        str(name),
        {k: v for k, v in source["topics"].items() if k in (VOLTAGE_KEY, PV_KEY)},
        int(source.get("qos", 1)),
        {**DEFAULT_SOURCE.outputs, **(content.get("outputs") or {})},
        content.get("loop_period_s"),
        fallback.get("on_missing_input", "hold_last"),
        fallback.get("input_timeout_s"),
        str(source.get("format", "json")),
        str(kind),
        source.get("data_access_policy"),
    )
