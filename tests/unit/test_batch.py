"""Shuffle batch framing: marshal for core types, pickle for the rest, cut anywhere,
each batch checked against its CRC-32 before it is decoded; spill frames likewise."""

from __future__ import annotations

import collections
import fractions
import io
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncspark.errors import CorruptDataError
from asyncspark.shuffle.batch import BatchEncoder, decode_batches, frame_header, read_frames

core = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(), st.binary()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=10)
other = st.one_of(st.builds(fractions.Fraction, st.integers(), st.integers(1, 9)),
                  st.builds(lambda k, v: collections.OrderedDict([(k, v)]), st.text(),
                            st.integers()))


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(st.lists(st.lists(st.tuples(st.one_of(core, other), core), max_size=6), max_size=6),
       st.lists(st.integers(0, 10_000), max_size=8))
def test_batches_round_trip_with_their_types(batches, points):
    enc = BatchEncoder()
    data = b"".join(enc.encode(b) for b in batches)
    decoded = list(decode_batches(cut(data, points)))
    assert decoded == batches
    # types survive exactly (True stays bool, 1.0 stays float, tuples stay tuples)
    assert repr(decoded) == repr(batches)


def test_marshal_first_then_pickle_for_the_rest():
    enc = BatchEncoder()
    a = enc.encode([(1, None), ("x", 2.5)])
    assert enc.use_marshal
    assert a[0] & 0x80  # the marshal flag
    b = enc.encode([(fractions.Fraction(1, 3), 1)])
    assert not enc.use_marshal
    assert not b[0] & 0x80
    c = enc.encode([(1, 2)])  # pickled from now on
    assert not c[0] & 0x80
    assert list(decode_batches([a + b + c])) == [[(1, None), ("x", 2.5)],
                                                 [(fractions.Fraction(1, 3), 1)], [(1, 2)]]


def test_truncated_and_corrupt_batches_raise_corrupt_data():
    data = BatchEncoder().encode([(1, 2)] * 10)
    with pytest.raises(CorruptDataError, match="ends inside a batch"):
        list(decode_batches([data[:-3]]))
    garbage = b"\xff" * (len(data) - 8)
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        list(decode_batches([data[:8] + garbage]))
    # a body that matches its checksum but does not decode (written by another version)
    word = len(garbage) | 1 << 31
    header = struct.pack(">II", word, zlib.crc32(garbage, word))
    with pytest.raises(CorruptDataError, match="corrupt shuffle batch"):
        list(decode_batches([header + garbage]))


@given(st.integers(0, 10_000), st.integers(1, 255))
def test_any_flipped_byte_is_caught_before_decoding(where, flip):
    batches = [[(i, f"v{i}") for i in range(50)], [(None, 2.5)] * 20]
    enc = BatchEncoder()
    data = bytearray(b"".join(enc.encode(b) for b in batches))
    data[where % len(data)] ^= flip
    with pytest.raises(CorruptDataError):
        list(decode_batches([bytes(data)]))


def test_spill_frames_round_trip_and_name_the_file_when_corrupt():
    bodies = [b"abc", b"", b"x" * 1000]
    data = b"".join(frame_header(b) + b for b in bodies)
    assert list(read_frames(io.BytesIO(data), "/spill")) == bodies
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(CorruptDataError, match=r"/spill: checksum mismatch in the frame at "
                                               r"offset 19 \(1000 bytes\)"):
        list(read_frames(io.BytesIO(bytes(flipped)), "/spill"))
    with pytest.raises(CorruptDataError, match="/spill: truncated the frame"):
        list(read_frames(io.BytesIO(data[:-5]), "/spill"))
    with pytest.raises(CorruptDataError, match="/spill: truncated frame header"):
        list(read_frames(io.BytesIO(data[:3]), "/spill"))
