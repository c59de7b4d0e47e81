"""Bytes <-> events: the postcard codec of WAL v5 records.

``_codec.pyx`` (native), ``_codec_py.py`` (its pure-Python twin) and
``_codec_common.py`` (the frame constants and tables both share). The package's
``encode``/``decode`` & co. are bound to one of them in ``actionqueue/__init__``.
"""
