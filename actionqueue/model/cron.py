"""Cron expressions as the Rust ``cron`` crate 0.12.1 reads them: validation
(:func:`validate_cron_expression`) and evaluation (:func:`cron_occurrences_after`, the
one home of the schedule arithmetic; the authority's run derivation calls it).

``validate_cron_expression`` accepts exactly what ``cron::Schedule::from_str``
(0.12.1) accepts:

* a shorthand ``@yearly``, ``@monthly``, ``@weekly``, ``@daily`` or ``@hourly``
  (lower case only), optionally surrounded by whitespace; or
* 6 or 7 fields: seconds 0-59, minutes 0-59, hours 0-23, day-of-month 1-31,
  month 1-12, day-of-week 1-7 (1 = Sunday) and an optional year 1970-2100.
  Five-field (classic Unix) expressions are rejected.

A field is a comma-separated list of items: ``*``, ``N``, ``A-B`` (A <= B),
``NAME``, ``NAME-NAME`` or a step ``X/S`` where X is ``*``, ``N``, ``A-B`` or
``NAME-NAME`` and S >= 1 (``N/S`` means N up to the field maximum).
``?`` may replace ``*`` in the day-of-month and day-of-week fields only.
Names (case-insensitive) exist only for months (``jan``/``january`` ...) and
days of week (``sun``/``sunday``, ``tue``/``tues``, ``thu``/``thurs`` ...).

Whitespace (space, tab, CR, LF only) is looser than it looks, as in the
crate's parser: numbers and names absorb whitespace on both sides (so
``1 - 5`` or ``1 , 2`` is one field) while ``*`` and ``?`` do not, and fields
need no separator at all when the boundary is unambiguous (``******`` is six
fields, ``MON2000`` is a weekday and a year).
"""

from __future__ import annotations

import bisect
import datetime as _dt
import re
from collections.abc import Callable
from typing import Any

__all__ = ["validate_cron_expression"]

_WS = re.compile(r"[ \t\r\n]*")
_DIGITS = re.compile(r"[0-9]+")
_ALPHA = re.compile(r"[A-Za-z]+")
_WS_CHARS = " \t\r\n"
_U32_MAX = 2**32 - 1
_SHORTHANDS = frozenset({"@yearly", "@monthly", "@weekly", "@daily", "@hourly"})

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"),
            ("apr", "april"), ("may",), ("jun", "june"), ("jul", "july"),
            ("aug", "august"), ("sep", "september"), ("oct", "october"),
            ("nov", "november"), ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("sun", "sunday"), ("mon", "monday"), ("tue", "tues", "tuesday"),
            ("wed", "wednesday"), ("thu", "thurs", "thursday"),
            ("fri", "friday"), ("sat", "saturday"),
        ),
        start=1,
    )
    for name in names
}

# (label, minimum, maximum, names or None, whether '?' is allowed)
_Unit = tuple[str, int, int, dict[str, int] | None, bool]
_UNITS: tuple[_Unit, ...] = (
    ("seconds", 0, 59, None, False),
    ("minutes", 0, 59, None, False),
    ("hours", 0, 23, None, False),
    ("day-of-month", 1, 31, None, True),
    ("month", 1, 12, _MONTHS, False),
    ("day-of-week", 1, 7, _WEEKDAYS, True),
    ("year", 1970, 2100, None, False),
)

# Parsed items. Specifiers: ("all",), ("point", n), ("range", a, b),
# ("names", a, b). Items: a specifier, ("step", specifier, s) or ("name", a).
_Item = tuple[Any, ...]
_Parse = Callable[[int], "tuple[Any, int] | None"]


class _Parser:
    """Backtracking parser for one field list, mirroring the crate's grammar."""

    def __init__(self, text: str) -> None:
        self.text = text

    def ws(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()  # type: ignore[union-attr]

    def token(self, pattern: re.Pattern[str], pos: int) -> tuple[str, int] | None:
        m = pattern.match(self.text, self.ws(pos))
        return (m.group(), self.ws(m.end())) if m else None

    def number(self, pos: int) -> tuple[int, int] | None:
        tok = self.token(_DIGITS, pos)
        if tok is None or len(tok[0].lstrip("0")) > 10 or int(tok[0]) > _U32_MAX:
            return None  # not a u32: this alternative fails
        return int(tok[0]), tok[1]

    def char(self, ch: str, pos: int) -> int | None:
        return pos + 1 if self.text.startswith(ch, pos) else None

    def name(self, pos: int) -> tuple[str, int] | None:
        return self.token(_ALPHA, pos)

    def pair(self, item: _Parse, pos: int, kind: str) -> tuple[_Item, int] | None:
        first = item(pos)
        if first is None or (dash := self.char("-", first[1])) is None:
            return None
        second = item(dash)
        return None if second is None else ((kind, first[0], second[0]), second[1])

    def specifier(self, pos: int, any_ok: bool) -> tuple[_Item, int] | None:
        for wildcard in "?*" if any_ok else "*":
            if (end := self.char(wildcard, pos)) is not None:
                return ("all",), end
        found = self.pair(self.number, pos, "range")
        if found is None and (num := self.number(pos)) is not None:
            found = ("point", num[0]), num[1]
        return found or self.pair(self.name, pos, "names")

    def item(self, pos: int, any_ok: bool) -> tuple[_Item, int] | None:
        spec = self.specifier(pos, any_ok)
        if spec is not None and (slash := self.char("/", spec[1])) is not None:
            if (step := self.number(slash)) is not None:
                return ("step", spec[0], step[0]), step[1]
        if spec is not None:
            return spec
        name = self.name(pos)
        return None if name is None else (("name", name[0]), name[1])

    def field(self, pos: int, any_ok: bool) -> tuple[list[_Item], int] | None:
        found = self.item(self.ws(pos), any_ok)
        if found is None:
            return None
        items, pos = [found[0]], found[1]
        # A ',' not followed by a valid item ends the list before the ','.
        while (comma := self.char(",", pos)) is not None:
            found = self.item(comma, any_ok)
            if found is None:
                break
            items.append(found[0])
            pos = found[1]
        return items, self.ws(pos)


def _check_field(items: list[_Item], unit: _Unit) -> str | None:
    """Return why the field's values are invalid for ``unit``, or None."""
    label, low, high, names = unit[:4]

    def lookup(name: str) -> int | None:
        return None if names is None else names.get(name.lower())

    def check(spec: _Item) -> str | None:
        kind = spec[0]
        if kind == "all":
            return None
        if kind == "point":
            ok = low <= spec[1] <= high
            return None if ok else f"{label} value {spec[1]} is outside {low}-{high}"
        if kind == "range":
            a, b = spec[1], spec[2]
            ok = low <= a <= b <= high
            return None if ok else f"invalid {label} range {a}-{b}"
        if kind == "names":
            a, b = lookup(spec[1]), lookup(spec[2])
            ok = a is not None and b is not None and a <= b
            return None if ok else f"invalid {label} range {spec[1]}-{spec[2]}"
        if kind in ("name", "names") and names is None:
            return f"the {label} field does not accept names ({spec[1]!r})"
        if kind == "name":
            ok = lookup(spec[1]) is not None
            return None if ok else f"{spec[1]!r} is not a valid {label} name"
        if spec[2] == 0:  # ("step", specifier, step)
            return f"{label} step cannot be zero"
        return check(spec[1])

    for spec in items:
        if (why := check(spec)) is not None:
            return why
    return None


def validate_cron_expression(expression: str) -> None:
    """Raise ``ValueError`` unless cron 0.12.1 ``Schedule::from_str`` accepts it."""

    def fail(why: str) -> ValueError:
        return ValueError(f"invalid cron expression {expression!r}: {why}")

    if expression.strip(_WS_CHARS) in _SHORTHANDS:
        return
    parser, pos, end = _Parser(expression), 0, len(expression)
    for index, unit in enumerate(_UNITS):
        if index == 6 and pos == end:
            return  # the year field is optional
        parsed = parser.field(pos, unit[4])
        if parsed is None:
            if pos == end:
                raise fail(f"expected 6 or 7 fields, found {index}")
            raise fail(f"cannot parse {unit[0]} field at position {parser.ws(pos)}")
        items, pos = parsed
        if (why := _check_field(items, unit)) is not None:
            raise fail(why)
    if pos != end:
        raise fail(f"unexpected trailing input at position {pos}")


# --------------------------------------------------------------------------------------
# Evaluation: the occurrences of a valid expression (UTC), for run derivation
# --------------------------------------------------------------------------------------
_SHORTHAND_FIELDS = {
    "@yearly": "0 0 0 1 1 * *",
    "@monthly": "0 0 0 1 * * *",
    "@weekly": "0 0 0 * * 1 *",
    "@daily": "0 0 0 * * * *",
    "@hourly": "0 0 * * * * *",
}
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _cron_fields(expression: str) -> list[list[int]]:
    """The sorted values of the 7 fields (seconds ... year) of a valid expression."""
    text = _SHORTHAND_FIELDS.get(expression.strip(_WS_CHARS), expression)
    parser, pos = _Parser(text), 0
    out: list[list[int]] = []
    for unit in _UNITS:
        label, low, high, names, any_ok = unit
        if len(out) == 6 and pos == len(text):
            out.append(list(range(low, high + 1)))  # no year field: every year
            break
        parsed = parser.field(pos, any_ok)
        if parsed is None:  # pragma: no cover - the policy was validated on construction
            raise ValueError(f"invalid cron expression {expression!r}")
        items, pos = parsed

        def num(v: Any) -> int:
            return v if isinstance(v, int) else names[v.lower()]  # type: ignore[index]

        def span(spec: tuple) -> tuple[int, int]:
            kind = spec[0]
            if kind == "all":
                return low, high
            if kind in ("point", "name"):
                return num(spec[1]), num(spec[1])
            return num(spec[1]), num(spec[2])

        values: set[int] = set()
        for item in items:
            if item[0] == "step":
                a, b = span(item[1])
                if item[1][0] == "point":
                    b = high  # N/S: from N up to the field's maximum
                values.update(range(a, b + 1, item[2]))
            else:
                a, b = span(item)
                values.update(range(a, b + 1))
        out.append(sorted(values))
    return out


def cron_occurrences_after(expression: str, after: int, count: int) -> list[int]:
    """The first ``count`` times (Unix seconds, UTC) strictly after ``after`` that match
    the cron expression, fewer when the schedule ends (years stop at 2100).

    Day of month and day of week must both match (day of week 1 = Sunday), as in the cron
    crate.
    """
    if count <= 0:
        return []
    secs, mins, hours, doms, months, dows, years = _cron_fields(expression)
    years_set, months_set, doms_set, dows_set = set(years), set(months), set(doms), set(dows)
    times = sorted(h * 3600 + mi * 60 + s for h in hours for mi in mins for s in secs)
    last_year = years[-1]
    out: list[int] = []
    t = after + 1
    while len(out) < count:
        if t >= int((_dt.datetime(last_year + 1, 1, 1, tzinfo=_dt.timezone.utc) - _EPOCH).total_seconds()):
            break
        start = _EPOCH + _dt.timedelta(seconds=t)
        day = start.date()
        first_second = start.hour * 3600 + start.minute * 60 + start.second
        found = None
        while day.year <= last_year:
            if day.year not in years_set:
                day, first_second = _dt.date(day.year + 1, 1, 1), 0
                continue
            if day.month not in months_set:
                nxt = _dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
                day, first_second = nxt, 0
                continue
            if day.day in doms_set and (day.isoweekday() % 7 + 1) in dows_set:
                i = bisect.bisect_left(times, first_second)
                if i < len(times):
                    found = int((_dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc) - _EPOCH)
                                .total_seconds()) + times[i]  # fmt: skip
                    break
            day, first_second = day + _dt.timedelta(days=1), 0
        if found is None:
            break
        out.append(found)
        t = found + 1
    return out
