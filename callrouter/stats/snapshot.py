"""A small, safe binary encoding for the statistics snapshot (no pickle: loading it runs no code).

Plain data only: None, bools, int64s, strings, lists, dicts and integer `array`s, which are
written as their typecode and raw little-endian bytes so a year of counters loads at memory
speed.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Any

MAGIC = b"CRSTATS2"
_TYPECODES = frozenset("bBhHiIqQ")  # fixed sizes only
_I64 = struct.Struct("<q")
_NONE, _FALSE, _TRUE, _INT, _STR, _LIST, _DICT, _ARRAY = range(8)
_LITTLE = sys.byteorder == "little"


def encode(value: Any) -> bytes:
    """The bytes of a plain-data value."""
    out: list[bytes] = [MAGIC]
    _put(value, out)
    return b"".join(out)


def _put(value: Any, out: list[bytes]) -> None:
    pack = _I64.pack
    if value is None:
        out.append(bytes((_NONE,)))
    elif value is True or value is False:
        out.append(bytes((_TRUE if value else _FALSE,)))
    elif isinstance(value, int):
        out.append(bytes((_INT,)) + pack(value))
    elif isinstance(value, str):
        raw = value.encode()
        out.append(bytes((_STR,)) + pack(len(raw)) + raw)
    elif isinstance(value, array):
        if value.typecode not in _TYPECODES:
            raise TypeError(f"only integer arrays are stored, not {value.typecode!r}")
        data = value if _LITTLE else array(value.typecode, value)
        if not _LITTLE:
            data.byteswap()
        out.append(bytes((_ARRAY, ord(value.typecode))) + pack(len(value)))
        out.append(data.tobytes())
    elif isinstance(value, (list, tuple)):
        out.append(bytes((_LIST,)) + pack(len(value)))
        for item in value:
            _put(item, out)
    elif isinstance(value, dict):
        out.append(bytes((_DICT,)) + pack(len(value)))
        for key, item in value.items():
            _put(key, out)
            _put(item, out)
    else:
        raise TypeError(f"cannot store {type(value).__name__} in a statistics snapshot")


def decode(data: bytes) -> Any:
    """The plain-data value of `encode`'s bytes; ValueError for anything else."""
    if not data.startswith(MAGIC):
        raise ValueError("not a callrouter statistics snapshot (or one of another version)")
    view = memoryview(data)
    try:
        value, pos = _get(view, len(MAGIC))
    except (IndexError, struct.error, UnicodeDecodeError, TypeError) as exc:
        raise ValueError(f"a damaged statistics snapshot: {exc}") from None
    if pos != len(data):
        raise ValueError("trailing bytes after the statistics snapshot")
    return value


def _get(view: memoryview, pos: int) -> tuple[Any, int]:
    tag = view[pos]
    pos += 1
    typecode = ""
    if tag == _ARRAY:
        typecode = chr(view[pos])
        if typecode not in _TYPECODES:
            raise ValueError(f"bad array typecode {typecode!r} in the statistics snapshot")
        pos += 1
    if tag == _NONE:
        return None, pos
    if tag in (_FALSE, _TRUE):
        return tag == _TRUE, pos
    (n,) = _I64.unpack_from(view, pos)
    pos += 8
    if tag == _INT:
        return n, pos
    if tag == _STR:
        return bytes(view[pos : pos + n]).decode(), pos + n
    if tag == _ARRAY:
        values = array(typecode)
        size = values.itemsize * n
        if n < 0 or pos + size > len(view):
            raise ValueError("truncated statistics snapshot")
        values.frombytes(view[pos : pos + size])
        if not _LITTLE:
            values.byteswap()
        return values, pos + size
    if tag == _LIST:
        items = []
        for _ in range(n):
            item, pos = _get(view, pos)
            items.append(item)
        return items, pos
    if tag == _DICT:
        mapping = {}
        for _ in range(n):
            key, pos = _get(view, pos)
            mapping[key], pos = _get(view, pos)
        return mapping, pos
    raise ValueError(f"bad tag {tag} in the statistics snapshot")
