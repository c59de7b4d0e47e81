#!/usr/bin/env python3
"""Differential fuzzer (atheris / libFuzzer): native codec vs pure-Python codec.

Every input is run through both backends four ways: as a framed record (``decode``), as a
buffer of records (``decode_batch``), as a bare payload (``decode_payload(data[12:])``) and
re-framed with a correct header (``decode(frame(data[12:]))``, so mutations reach the payload
parser instead of failing the CRC). Both backends must return equal events or raise the same
DecodeError subclass with the same reason and offsets; any other exception is a crash.
Decoded events must re-encode identically in both backends and decode back to themselves.

    pip install atheris                      # or: pip install -e '.[fuzz]'
    mkdir -p /tmp/aq-corpus && cp tests/vectors/events/records/*.bin /tmp/aq-corpus/
    python fuzz/differential_fuzzer.py /tmp/aq-corpus -max_total_time=600

Pass a scratch corpus directory first: libFuzzer writes new inputs into it (never point it at
the golden vectors). tests/test_fuzz.py runs this target for a few seconds when atheris is
installed.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["actionqueue"]):
    import actionqueue as aq
    from actionqueue.codec import _codec_py as py

from actionqueue.codec import _codec as cy  # native: not instrumented, compared against

assert getattr(cy, "CYTHON_MODULE", 0) == 1, "the native codec is required for differential fuzzing"

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from aq_testlib import error_signature  # noqa: E402 - the suite's definition of "the same error"

_HEADER = struct.Struct("<III")

def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(5, len(payload), zlib.crc32(payload) & 0xFFFFFFFF) + payload


def _run(backend, fn_name: str, data: bytes):
    try:
        value = getattr(backend, fn_name)(data)
    except aq.DecodeError as exc:
        return ("err", error_signature(exc)), []
    events = value if isinstance(value, list) else [value]
    return ("ok", [e.to_builtins() for e in events]), events


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    for fn_name, arg in (
        ("decode", data),
        ("decode_batch", data),
        ("decode_payload", data[12:]),
        ("decode", _frame(data[12:])),
    ):
        native, events = _run(cy, fn_name, arg)
        pure, _ = _run(py, fn_name, arg)
        if native != pure:
            raise AssertionError(f"{fn_name} differs\n native {native}\n python {pure}\n input {arg.hex()}")
        for event in events:
            record = cy.encode(event)
            if py.encode(event) != record:
                raise AssertionError(f"encoders differ for {event!r}")
            if cy.decode(record) != event or py.decode(record) != event:
                raise AssertionError(f"re-encoded event does not decode back: {event!r}")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
