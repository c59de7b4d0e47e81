"""Tests for actionqueue.model.cron (parity with the Rust cron crate 0.12.1).

Every expected outcome below was derived from the crate's v0.12.1 source
(src/parsing.rs for the grammar, src/time_unit/*.rs for value ranges and
names) and confirmed by running the real 0.12.1 parser (built offline with
nom 7.1.3) on each expression.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

try:
    from actionqueue.model.cron import validate_cron_expression
except ImportError:  # package not importable yet: load the module by path
    _path = Path(__file__).resolve().parents[1] / "actionqueue" / "model" / "cron.py"
    _spec = importlib.util.spec_from_file_location("_cron_under_test", _path)
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    validate_cron_expression = _module.validate_cron_expression


ACCEPTED = [
    # Required examples.
    "*/5 * * * * *",
    "0 * * * * * *",
    "0 0 * * * * *",
    "0 0 0 1 1 * *",
    "0 0 9 * * MON *",
    # longhand = six fields plus an opt() year field.
    "* * * * * *",
    "0 0 0 * * * 2020-2030",
    # Shorthands: tag("@...") wrapped in multispace0 on both sides.
    "@yearly",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
    " \t@daily\r\n",
    # '?' is accepted by field_with_any (day-of-month, day-of-week) only,
    # also as a period base (period_with_any).
    "0 0 12 ? * MON-FRI",
    "0 0 0 1 * ?",
    "* * * ? * ?",
    "* * * ?/2 * *",
    # The crate's own doc example: lists, named ranges, point period on year.
    "0   30   9,12,15     1,15       May-Aug  Mon,Wed,Fri  2018/2",
    # Names: case-insensitive (to_lowercase), short and long forms.
    "0 0 0 1 JANUARY *",
    "0 0 0 1 jan-mar *",
    "0 0 0 * * sun,Tues,THURS",
    "0 0 0 * * saturday",
    # Bounds: DaysOfWeek 1-7 (sun = 1), Years 1970-2100, etc.
    "59 59 23 31 12 7 2100",
    "0 0 0 1 1 1 1970",
    "0 0 0 * * 1-7",
    # Periods: Point(n)/s means n..=max stepped; step may exceed the range;
    # step is any u32 >= 1; ranges and named ranges may be stepped.
    "10/15 * * * * *",
    "0-30/5 * * * * *",
    "*/100 * * * * *",
    "*/4294967295 * * * * *",
    "* * * * * MON-FRI/2",
    # u32::from_str accepts leading zeros.
    "007 * * * * *",
    # '*' may appear in a list (not only alone).
    "*,5 * * * * *",
    # ordinal()/name() are delimited by multispace0, so whitespace around
    # numbers and names inside a field is absorbed...
    "1 - 5 * * * * *",
    "1 , 2 * * * * *",
    "1, 2 * * * * *",
    "5 /10 * * * * *",
    "* * * * * MON - FRI",
    "0\t0\n0 * *\r\n*",
    # ...and fields need no separator (multispace0 may match nothing).
    "******",
    "* * * * * MON2000",
]

REJECTED = [
    # Required examples.
    "not a cron",
    "",
    "   ",
    # Five-field Unix syntax and eight fields (terminated(..., eof)).
    "* * * * *",
    "0 0 * * 1",
    "* * * * * * * *",
    # Shorthands are exact, lower-case tags; @annually/@reboot do not exist;
    # all_consuming rejects trailing input (the crate's issue #86 test).
    "@DAILY",
    "@annually",
    "@reboot",
    "@daily *",
    "@dailyBla",
    # validate_ordinal: out-of-range values per TimeUnitField min/max.
    "60 * * * * *",
    "* 60 * * * *",
    "* * 24 * * *",
    "* * * 0 * *",
    "* * * 32 * *",
    "* * * * 0 *",
    "* * * * 13 *",
    "* * * * * 0",
    "* * * * * 8",
    "* * * * * * 1969",
    "* * * * * * 2101",
    "* * * 0/5 * *",
    # Period(_, 0) => "range step cannot be zero".
    "*/0 * * * * *",
    "* * * ?/0 * *",
    # Range / NamedRange require start <= end.
    "5-1 * * * * *",
    "* * * * MAR-JAN *",
    "* * * * * FRI-MON",
    "10-5/2 * * * * *",
    # '?' only in day-of-month / day-of-week (field vs field_with_any).
    "? * * * * *",
    "* * * * ? *",
    # A named point cannot be a period base (specifier has no named point).
    "* * * * * MON/2",
    "* * * * FEB/2 *",
    # '*' and '?' do not absorb whitespace, so "* /5" splits into "*" and a
    # field starting with '/', and ", *" ends the list before the ','.
    "* /5 * * * * *",
    "1, * * * * * *",
    "1,,2 * * * * *",
    ",1 * * * * *",
    "1/2/3 * * * * *",
    # Names exist only for months and days of week (default ordinal_from_name
    # errors); unknown names are rejected.
    "MON * * * * *",
    "* * * * * TURTLE",
    "* * * * JANU *",
    "0 0 0 1 1 * MON",
    "* * * * * 1-MON",
    # No Quartz extensions (L, W, #).
    "* * * L * *",
    "* * * 15W * *",
    "* * * * * 5#3",
    # Numbers must fit in u32 (map_res(digit1, u32::from_str)).
    "4294967296 * * * * *",
    "*/4294967296 * * * * *",
    "9" * 5000 + " * * * * *",
    # multispace0 is only ' ', '\t', '\r', '\n'; digit1/alpha1 are ASCII.
    "* * * * * *\f",
    "* * * * * *\u00a0",
    "\u0661 * * * * *",
    "* * * * * \u00e9",
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_accepted(expression: str) -> None:
    assert validate_cron_expression(expression) is None


@pytest.mark.parametrize("expression", REJECTED)
def test_rejected(expression: str) -> None:
    with pytest.raises(ValueError, match="invalid cron expression"):
        validate_cron_expression(expression)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("* * * * *", "expected 6 or 7 fields, found 5"),
        ("*/0 * * * * *", "step cannot be zero"),
        ("* * * * 13 *", "month value 13 is outside 1-12"),
        ("* * * * * TURTLE", "'TURTLE' is not a valid day-of-week name"),
        ("* * * * * * * *", "unexpected trailing input"),
    ],
)
def test_error_message(expression: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_cron_expression(expression)
    assert repr(expression) in str(info.value)
    assert reason in str(info.value)


def test_evaluation_is_a_public_function_of_the_cron_module() -> None:
    from actionqueue.model.cron import cron_occurrences_after

    # midnight UTC each day; noon on Sundays (1970-01-04 was a Sunday; 1 = Sunday)
    assert cron_occurrences_after("0 0 0 * * * *", 0, 2) == [86_400, 172_800]
    assert cron_occurrences_after("@daily", 86_399, 1) == [86_400]
    assert cron_occurrences_after("0 0 12 * * 1 *", 0, 2) == [302_400, 907_200]
    assert cron_occurrences_after("0 0 0 1 1 * 1970", 0, 3) == []  # the schedule ended
    assert cron_occurrences_after("0 0 0 * * * *", 0, 0) == []
