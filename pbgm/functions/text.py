"""Functions of text: the string tests, `regex-match` and MQTT `topic-matches`.

The regular expression of `regex-match` arrives checked and compiled (`pbgm.functions.regex`); here
only the input length is bounded. Topic filters are checked against MQTT 3.1.1 §4.7.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pbgm.functions.values import NOTHING, EvaluationFailure, one, scalars, type_error

MAX_REGEX_INPUT = 4096


def string_test(fn: str, test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    """The function `fn`: `test(text, part)` on two strings, False when one is absent."""

    def impl(text: Any, part: Any) -> bool:
        text, part = one(text, fn), one(part, fn)
        if text is NOTHING or part is NOTHING:
            return False
        for v in (text, part):
            if not isinstance(v, str):
                raise type_error(fn, "strings", v)
        return test(text, part)

    return impl


def regex_match(text: Any, pattern: re.Pattern[str]) -> bool:
    """Full match of a pattern checked and compiled by the compiler."""
    text = one(text, "regex-match")
    if text is NOTHING:
        return False
    if not isinstance(text, str):
        raise type_error("regex-match", "a string", text)
    if len(text) > MAX_REGEX_INPUT:
        raise EvaluationFailure(
            "function_error", f"input to `regex-match` is longer than {MAX_REGEX_INPUT} characters"
        )
    return pattern.fullmatch(text) is not None


# --- MQTT --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """An MQTT topic filter split into levels, checked against MQTT 3.1.1 §4.7."""

    text: str
    levels: tuple[str, ...]


def parse_topic_filter(text: str) -> TopicFilter:
    if not text or "\0" in text:
        raise ValueError("a topic filter must be a non-empty string without NUL")
    levels = tuple(text.split("/"))
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"in `{text}`, `#` must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"in `{text}`, `+` must be a whole level")
    return TopicFilter(text, levels)


def topic_prefix_problem(prefix: Any) -> str | None:
    """What is wrong with `prefix` as the start of topic names (`/pbgm/devices`): it is
    a text that starts with `/` and holds no `+`, `#` or NUL; None when nothing is."""
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        return f"`{prefix}` is not a topic prefix such as `/pbgm/devices`"
    if any(c in prefix for c in "+#\x00"):
        return f"`{prefix}` holds a wildcard or NUL: it is not a topic prefix"
    return None


def topic_matches(topic: Any, topic_filter: Any) -> bool:
    """MQTT 3.1.1/5 matching: `+` one level, `#` the rest (and the parent level)."""
    fn = "topic-matches"
    args = scalars((topic, topic_filter), fn)
    if args is None:
        return False
    topic, topic_filter = args
    if not isinstance(topic_filter, TopicFilter):
        topic_filter = _topic_filter(topic_filter, fn)
    if not isinstance(topic, str):
        raise type_error(fn, "a topic name", topic)
    if not topic or "+" in topic or "#" in topic:
        raise EvaluationFailure("function_error", f"`{fn}`: a topic name is non-empty, no `+`/`#`")
    return match_levels(topic.split("/"), topic_filter.levels)


def _topic_filter(value: Any, fn: str) -> TopicFilter:
    if not isinstance(value, str):
        raise type_error(fn, "a topic filter", value)
    try:
        return parse_topic_filter(value)
    except ValueError as exc:
        raise EvaluationFailure("function_error", f"`{fn}`: {exc}") from None


def match_levels(topic: list[str], levels: tuple[str, ...]) -> bool:
    """Whether the levels of a topic name match the levels of a filter."""
    if topic[0].startswith("$") and levels[0] in ("+", "#"):
        return False
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(topic) or (level != "+" and level != topic[i]):
            return False
    return len(topic) == len(levels)
