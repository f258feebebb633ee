"""The data types of XACML 3.0 (§A.2, §B.3): values, their lexical forms and their equality.

A typed value is a Python object whose class says its type, so a bag may be filtered by
type and a function may check its arguments by class alone:

| XACML type (`http://www.w3.org/2001/XMLSchema#...` unless said) | Python value |
|---|---|
| `string`, `boolean`, `integer`, `double` | `str`, `bool`, `int`, `float` |
| `dateTime` | an aware `datetime` (no timezone given: UTC, the PDP's implicit timezone) |
| `dayTimeDuration` | `timedelta` |
| `date`, `time` | `XDate`, `XTime` (the timezone kept: compared as instants, §A.3.8) |
| `yearMonthDuration` | `YearMonthDuration` (a signed number of months) |
| `anyURI`, `hexBinary`, `base64Binary` | `AnyURI`, `HexBinary`, `Base64Binary` |
| `rfc822Name`, `x500Name` (`urn:oasis:names:tc:xacml:1.0:data-type:`) | `Rfc822Name`, `X500Name` |
| `ipAddress`, `dnsName` (`urn:oasis:names:tc:xacml:2.0:data-type:`) | `IpAddress`, `DnsName` |

Each class defines `==` and `hash` as XACML defines equality of its type: an
rfc822Name's domain is compared without case, an x500Name by its normalised RDNs
(RFC 4517 distinguishedNameMatch), dates and times as instants. `parse(type, text)`
reads a lexical form (raising `ValueError` with a message for the person who wrote it),
`lexical(value)` writes one, `type_of(value)` names a value's type. Years outside 1-9999
and fractions of a second beyond microseconds are not supported (Python's `datetime`);
a value using them is refused, never rounded silently (fractions are truncated to
microseconds).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

XS = "http://www.w3.org/2001/XMLSchema#"
XACML1 = "urn:oasis:names:tc:xacml:1.0:data-type:"
XACML2 = "urn:oasis:names:tc:xacml:2.0:data-type:"

MAX_LEXICAL = 65_536
"""The longest lexical form read (a longer value is refused, not parsed)."""


# --- values of their own class -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnyURI:
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class HexBinary:
    data: bytes


@dataclass(frozen=True, slots=True)
class Base64Binary:
    data: bytes


@dataclass(frozen=True, slots=True)
class Rfc822Name:
    """`local@domain`: the local part compared with case, the domain without (§A.3.1)."""

    text: str = field(compare=False)
    local: str = field(compare=False)
    domain: str = field(compare=False)
    key: tuple[str, str] = field(repr=False)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class X500Name:
    """A distinguished name; equal when its RDNs are (types and values without case,
    values with their spaces collapsed)."""

    text: str = field(compare=False)
    rdns: tuple[frozenset[tuple[str, str]], ...]

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class IpAddress:
    """`address[/mask][:portrange]`, IPv4 or `[IPv6]`."""

    text: str = field(compare=False)
    address: Any
    mask: Any
    ports: tuple[int | None, int | None] | None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class DnsName:
    """`hostname[:portrange]`; the host may start with `*.`; compared without case."""

    text: str = field(compare=False)
    host: str
    ports: tuple[int | None, int | None] | None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class YearMonthDuration:
    months: int

    def __lt__(self, other: YearMonthDuration) -> bool:
        return self.months < other.months

    def __le__(self, other: YearMonthDuration) -> bool:
        return self.months <= other.months


class _Instant:
    """A date or a time with an optional timezone, ordered by the instant it starts
    (XPath op:date-equal, op:time-equal: a missing timezone is UTC)."""

    __slots__ = ("_key", "offset", "value")

    value: Any
    offset: timedelta | None
    _key: datetime

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Instant)
            and other.__class__ is self.__class__
            and (self._key == other._key)
        )

    def __hash__(self) -> int:
        return hash(self._key)

    def __lt__(self, other: _Instant) -> bool:
        return self._key < other._key

    def __le__(self, other: _Instant) -> bool:
        return self._key <= other._key

    def __gt__(self, other: _Instant) -> bool:
        return self._key > other._key

    def __ge__(self, other: _Instant) -> bool:
        return self._key >= other._key

    @property
    def zone(self) -> timezone:
        return UTC if self.offset is None else timezone(self.offset)


class XDate(_Instant):
    """An `xs:date`, e.g. `2002-03-22` or `2002-03-22-05:00`."""

    __slots__ = ()

    def __init__(self, value: date, offset: timedelta | None = None) -> None:
        self.value, self.offset = value, offset
        self._key = datetime(value.year, value.month, value.day, tzinfo=self.zone)

    def __repr__(self) -> str:
        return f"XDate({lexical(self)!r})"


REFERENCE_DAY = date(1972, 12, 31)
"""The day a time is put on to compare it (XPath §10.4.12)."""


class XTime(_Instant):
    """An `xs:time`, e.g. `08:23:47-05:00`."""

    __slots__ = ()

    def __init__(self, value: time, offset: timedelta | None = None) -> None:
        self.value, self.offset = value, offset
        self._key = datetime.combine(REFERENCE_DAY, value, tzinfo=self.zone)

    def __repr__(self) -> str:
        return f"XTime({lexical(self)!r})"

    def seconds_utc(self) -> float:
        """Seconds after midnight UTC (for `time-in-range`)."""
        moment = self._key.astimezone(UTC)
        return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


# --- reading lexical forms -------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?\d+")
_DOUBLE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?INF|NaN")
_ZONE = r"(Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?"
_DATE = re.compile(r"(\d{4,})-(\d\d)-(\d\d)" + _ZONE)
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)(\.\d+)?" + _ZONE)
_DATETIME = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?" + _ZONE)
_DAYTIME = re.compile(r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")
_YEARMONTH = re.compile(r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_PORT = re.compile(r"(\d*)(-?)(\d*)")


def _collapse(text: str) -> str:
    """XML Schema's whitespace collapse, for every type but `string`."""
    return " ".join(text.split())


def _zone(text: str | None) -> timedelta | None:
    if not text:
        return None
    if text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    hours, minutes = text[1:].split(":")
    return sign * timedelta(hours=int(hours), minutes=int(minutes))


def _micro(fraction: str | None) -> int:
    return int((fraction or ".0")[1:7].ljust(6, "0"))


def parse_boolean(text: str) -> bool:
    value = _collapse(text)
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError(f"`{text}` is not a boolean (`true`, `false`, `1` or `0`)")


def parse_integer(text: str) -> int:
    value = _collapse(text)
    if not _INTEGER.fullmatch(value) or len(value) > 4300:
        raise ValueError(f"`{text}` is not an integer")
    return int(value)


def parse_double(text: str) -> float:
    value = _collapse(text)
    if not _DOUBLE.fullmatch(value):
        raise ValueError(f"`{text}` is not a double")
    return float(value.replace("INF", "inf"))


def parse_date(text: str) -> XDate:
    match = _DATE.fullmatch(_collapse(text))
    if match is None:
        raise ValueError(f"`{text}` is not a date `YYYY-MM-DD` with an optional timezone")
    year, month, day, zone = match.groups()
    return XDate(_checked(text, lambda: date(int(year), int(month), int(day))), _zone(zone))


def parse_time(text: str) -> XTime:
    match = _TIME.fullmatch(_collapse(text))
    if match is None:
        raise ValueError(f"`{text}` is not a time `hh:mm:ss` with an optional timezone")
    hour, minute, second, fraction, zone = match.groups()
    if hour == "24" and minute == "00" and second == "00" and not fraction.strip(".0"):
        hour = "00"  # 24:00:00 is the midnight that ends the day
    value = _checked(text, lambda: time(int(hour), int(minute), int(second), _micro(fraction)))
    return XTime(value, _zone(zone))


def parse_datetime(text: str) -> datetime:
    match = _DATETIME.fullmatch(_collapse(text))
    if match is None:
        raise ValueError(f"`{text}` is not a dateTime `YYYY-MM-DDThh:mm:ss` (timezone optional)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = _zone(zone)
    tz = UTC if offset is None else timezone(offset)
    end_of_day = hour == "24" and minute == "00" and second == "00"
    hours = 0 if end_of_day else int(hour)

    def build() -> datetime:
        moment = datetime(
            int(year), int(month), int(day), hours, int(minute), int(second), _micro(fraction), tz
        )
        return moment + timedelta(days=1) if end_of_day else moment

    moment: datetime = _checked(text, build)
    return moment


def _checked(text: str, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"`{text}` is out of range: {exc} (years 1-9999 are supported)") from None


def parse_daytime_duration(text: str) -> timedelta:
    value = _collapse(text)
    match = _DAYTIME.fullmatch(value)
    if match is None or value.rstrip("T").endswith("P") or value.endswith("T"):
        raise ValueError(f"`{text}` is not a dayTimeDuration such as `P1DT2H3M4S`")
    negative, days, hours, minutes, seconds = match.groups()
    whole, _, fraction = (seconds or "0").partition(".")
    try:
        span = timedelta(
            days=int(days or 0),
            hours=int(hours or 0),
            minutes=int(minutes or 0),
            seconds=int(whole),
            microseconds=_micro("." + fraction if fraction else None),
        )
    except OverflowError:
        raise ValueError(f"`{text}` is too long a duration") from None
    return -span if negative else span


def parse_yearmonth_duration(text: str) -> YearMonthDuration:
    value = _collapse(text)
    match = _YEARMONTH.fullmatch(value)
    if match is None or value.endswith("P"):
        raise ValueError(f"`{text}` is not a yearMonthDuration such as `P1Y2M`")
    negative, years, months = match.groups()
    total = int(years or 0) * 12 + int(months or 0)
    if total > 12 * 10_000:
        raise ValueError(f"`{text}` is too long a duration")
    return YearMonthDuration(-total if negative else total)


def parse_any_uri(text: str) -> AnyURI:
    value = _collapse(text)
    if any(ord(c) < 0x20 for c in value):
        raise ValueError("an anyURI has no control characters")
    return AnyURI(value)


def parse_hex(text: str) -> HexBinary:
    value = _collapse(text)
    if len(value) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in value):
        return HexBinary(bytes.fromhex(value))
    raise ValueError(f"`{text[:40]}` is not hexBinary (pairs of hexadecimal digits)")


def parse_base64(text: str) -> Base64Binary:
    value = "".join(text.split())
    try:
        return Base64Binary(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise ValueError(f"`{text[:40]}` is not base64Binary") from None


def parse_rfc822(text: str) -> Rfc822Name:
    value = _collapse(text)
    local, at, domain = value.rpartition("@")
    if not at or not local or not _is_host(domain):
        raise ValueError(f"`{text}` is not an rfc822Name `local@domain`")
    return Rfc822Name(value, local, domain, (local, domain.lower()))


def _is_host(name: str) -> bool:
    labels = name.split(".")
    return bool(name) and all(_HOST_LABEL.fullmatch(label) for label in labels)


# x500Name: RFC 4514 (2253) distinguished names

_DN_SPECIAL = ',+"\\<>;='


def parse_x500(text: str) -> X500Name:
    value = text.strip()
    try:
        rdns = tuple(frozenset(_ava(a) for a in _split(rdn, "+")) for rdn in _split(value, ",;"))
    except ValueError as exc:
        raise ValueError(f"`{text}` is not an x500Name: {exc}") from None
    if not value or any(not rdn for rdn in rdns):
        raise ValueError(f"`{text}` is not an x500Name such as `cn=Alice, o=Medico, c=US`")
    return X500Name(value, rdns)


def _split(text: str, separators: str) -> list[str]:
    """Split at unescaped, unquoted separators."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    if quoted:
        raise ValueError("an unclosed quote")
    parts.append("".join(current))
    return parts


def _ava(text: str) -> tuple[str, str]:
    kind, equals, value = text.partition("=")
    kind = kind.strip()
    if not equals or not kind:
        raise ValueError(f"`{text.strip()}` is not `type=value`")
    return kind.lower(), _dn_value(value.strip())


def _dn_value(text: str) -> str:
    if text.startswith("#"):
        return text.lower()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            pair = text[i + 1 : i + 3]
            if len(pair) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in pair):
                out.append(chr(int(pair, 16)))
                i += 3
                continue
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return " ".join("".join(out).split()).casefold()


# ipAddress and dnsName (§A.2)


def _ports(text: str | None, original: str) -> tuple[int | None, int | None] | None:
    if text is None:
        return None
    match = _PORT.fullmatch(text)
    if match is None or not (match.group(1) or match.group(3)):
        raise ValueError(f"`{original}` has a bad port range `{text}`")
    low, dash, high = match.groups()
    first = int(low) if low else None
    if not dash:
        return first, first
    last = int(high) if high else None
    if first is not None and last is not None and first > last:
        raise ValueError(f"`{original}` has a port range that ends before it starts")
    return first, last


def parse_ip(text: str) -> IpAddress:
    value = _collapse(text)
    try:
        if value.startswith("["):
            end = value.index("]")
            address = ipaddress.IPv6Address(value[1:end])
            rest = value[end + 1 :]
            mask = None
            if rest.startswith("/["):
                close = rest.index("]")
                mask = ipaddress.IPv6Address(rest[2:close])
                rest = rest[close + 1 :]
            ports = _ports(rest[1:], text) if rest.startswith(":") else None
            if rest and not rest.startswith(":"):
                raise ValueError("unexpected text after the address")
            return IpAddress(value, address, mask, ports)
        main, colon, port = value.partition(":")
        host, slash, mask_text = main.partition("/")
        return IpAddress(
            value,
            ipaddress.IPv4Address(host),
            ipaddress.IPv4Address(mask_text) if slash else None,
            _ports(port, text) if colon else None,
        )
    except ValueError as exc:
        raise ValueError(f"`{text}` is not an ipAddress: {exc}") from None


def parse_dns(text: str) -> DnsName:
    value = _collapse(text)
    host, colon, port = value.partition(":")
    name = host[2:] if host.startswith("*.") else host
    if not _is_host(name):
        raise ValueError(f"`{text}` is not a dnsName `host[:portrange]`")
    return DnsName(value, host.lower(), _ports(port, text) if colon else None)


# --- writing lexical forms -------------------------------------------------------------------


def _zone_text(offset: timedelta | None) -> str:
    if offset is None:
        return ""
    if not offset:
        return "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _clock(value: time | datetime) -> str:
    text = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def _double_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(value)


def _daytime_text(span: timedelta) -> str:
    sign = "-" if span < timedelta(0) else ""
    total = abs(span)
    days, seconds, micro = total.days, total.seconds, total.microseconds
    hours, minutes, secs = seconds // 3600, seconds // 60 % 60, seconds % 60
    out = f"{sign}P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or micro:
        clock += f"{secs}" + (f".{micro:06d}".rstrip("0") if micro else "") + "S"
    if clock:
        out += "T" + clock
    return out if out not in ("P", "-P") else "PT0S"


def _yearmonth_text(value: YearMonthDuration) -> str:
    sign = "-" if value.months < 0 else ""
    years, months = divmod(abs(value.months), 12)
    text = (f"{years}Y" if years else "") + (f"{months}M" if months or not years else "")
    return f"{sign}P{text}"


def _datetime_text(value: datetime) -> str:
    head = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{_clock(value)}"
    return head + _zone_text(value.utcoffset())


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataType:
    """One XACML data type: its identifier, short name, value class, reader and writer."""

    uri: str
    name: str
    cls: type
    parse: Callable[[str], Any]
    lexical: Callable[[Any], str]


_TYPES = (
    DataType(XS + "string", "string", str, lambda text: text, str),
    DataType(XS + "boolean", "boolean", bool, parse_boolean, lambda v: "true" if v else "false"),
    DataType(XS + "integer", "integer", int, parse_integer, str),
    DataType(XS + "double", "double", float, parse_double, _double_text),
    DataType(
        XS + "time", "time", XTime, parse_time, lambda v: _clock(v.value) + _zone_text(v.offset)
    ),
    DataType(
        XS + "date", "date", XDate, parse_date, lambda v: v.value.isoformat() + _zone_text(v.offset)
    ),
    DataType(XS + "dateTime", "dateTime", datetime, parse_datetime, _datetime_text),
    DataType(
        XS + "dayTimeDuration", "dayTimeDuration", timedelta, parse_daytime_duration, _daytime_text
    ),
    DataType(
        XS + "yearMonthDuration",
        "yearMonthDuration",
        YearMonthDuration,
        parse_yearmonth_duration,
        _yearmonth_text,
    ),
    DataType(XS + "anyURI", "anyURI", AnyURI, parse_any_uri, str),
    DataType(XS + "hexBinary", "hexBinary", HexBinary, parse_hex, lambda v: v.data.hex().upper()),
    DataType(
        XS + "base64Binary",
        "base64Binary",
        Base64Binary,
        parse_base64,
        lambda v: base64.b64encode(v.data).decode("ascii"),
    ),
    DataType(XACML1 + "rfc822Name", "rfc822Name", Rfc822Name, parse_rfc822, str),
    DataType(XACML1 + "x500Name", "x500Name", X500Name, parse_x500, str),
    DataType(XACML2 + "ipAddress", "ipAddress", IpAddress, parse_ip, str),
    DataType(XACML2 + "dnsName", "dnsName", DnsName, parse_dns, str),
)

DATATYPES: dict[str, DataType] = {t.uri: t for t in _TYPES}
"""The data types by their URI."""
BY_NAME: dict[str, DataType] = {t.name: t for t in _TYPES}
"""The data types by their short name (`string`, `dateTime`, ...)."""
BY_CLASS: dict[type, DataType] = {t.cls: t for t in _TYPES}
STRING = XS + "string"


def datatype(uri: str) -> DataType:
    """The data type of a URI; `ValueError` naming the supported ones otherwise."""
    found = DATATYPES.get(uri)
    if found is None:
        raise ValueError(f"`{uri}` is not a supported XACML data type")
    return found


def parse(uri: str, text: str) -> Any:
    """The value of a lexical form of the data type `uri` (`ValueError` if not one)."""
    if len(text) > MAX_LEXICAL:
        raise ValueError(f"a value is at most {MAX_LEXICAL} characters")
    return datatype(uri).parse(text)


def type_of(value: Any) -> DataType | None:
    """The data type of a typed value, None for a value of no XACML type (a list, a dict)."""
    return BY_CLASS.get(value.__class__)


def lexical(value: Any) -> str:
    """The lexical form of a typed value (`str()` of anything else)."""
    found = BY_CLASS.get(value.__class__)
    return found.lexical(value) if found is not None else str(value)
