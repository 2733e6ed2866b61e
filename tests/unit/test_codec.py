"""The sans-IO frame codec: round trips, arbitrary chunking, and hostile input."""

from __future__ import annotations

import dataclasses
import struct

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncspark.errors import LocalProtocolError, RemoteProtocolError
from asyncspark.transport.codec import CLOSED, MESSAGE_TYPES, NEED_DATA, FrameCodec, Message
from asyncspark.transport.messages.control import Heartbeat, StopExecutor
from asyncspark.transport.messages.tasks import KillTask, LaunchTasks, TaskBinary, TaskStatuses

PREFIX = struct.Struct(">II")
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- strategies ------------------------------------------------------------------------

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = st.one_of(st.none(), st.booleans(), ints, st.text(max_size=20),
                    st.binary(max_size=40), st.floats(allow_nan=False))
# msgpack decodes arrays as lists and maps as dicts: keep containers in those forms.
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=6,
)
FIELD_STRATEGIES = {
    "int": ints,
    "str": st.text(max_size=60),
    "bytes": st.binary(max_size=100),
    "bool": st.booleans(),
    "float": st.floats(allow_nan=False),
    "list": st.lists(values, max_size=5),
    "dict": st.dictionaries(st.text(max_size=10), values, max_size=5),
    "str | None": st.none() | st.text(max_size=50),
    "int | None": st.none() | ints,
    "bytes | None": st.none() | st.binary(max_size=50),
}
BODIES = st.binary(max_size=4096)


def message_strategy(cls: type[Message]) -> st.SearchStrategy:
    kwargs = {}
    for f in dataclasses.fields(cls):
        kwargs[f.name] = BODIES if f.name == "body" else FIELD_STRATEGIES[str(f.type)]
    return st.builds(cls, **kwargs)


ALL_CLASSES = sorted(MESSAGE_TYPES.values(), key=lambda c: c.TYPE)
messages = st.one_of([message_strategy(c) for c in ALL_CLASSES])


def drain(codec: FrameCodec, limit: int = 10_000) -> list:
    """Every event up to NEED_DATA/CLOSED, the sentinel last; bounded, never hangs."""
    out = []
    for _ in range(limit):
        ev = codec.next_event()
        out.append(ev)
        if ev is NEED_DATA or ev is CLOSED:
            return out
    raise AssertionError("next_event() did not reach NEED_DATA or CLOSED")


def feed(codec: FrameCodec, data: bytes, sizes: list[int]) -> list:
    """Feed ``data`` in chunks of the given sizes (cycled), then EOF; all messages."""
    got: list = []
    pos = 0
    i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)] if sizes else len(data)
        i += 1
        codec.receive_data(data[pos:pos + n])
        pos += n
        events = drain(codec)
        assert events[-1] is NEED_DATA
        got.extend(events[:-1])
    codec.receive_data(b"")
    events = drain(codec)
    assert events == [CLOSED]
    return got


def frame(header_obj, body: bytes = b"") -> bytes:
    header = msgpack.packb(header_obj, use_bin_type=True)
    return PREFIX.pack(len(header), len(body)) + header + body


# -- round trips -----------------------------------------------------------------------

def test_every_message_type_has_a_strategy():
    assert ALL_CLASSES, "no message types registered"
    for cls in ALL_CLASSES:
        message_strategy(cls)  # KeyError for a field type without a strategy


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_round_trip_each_type(cls, data):
    msg = data.draw(message_strategy(cls))
    codec = FrameCodec()
    wire = codec.send(msg)
    assert wire == b"".join(bytes(p) for p in codec.send_parts(msg))
    codec.receive_data(wire)
    got = codec.next_event()
    assert type(got) is cls
    assert got == msg
    assert codec.next_event() is NEED_DATA
    assert codec.buffered == 0


@FAST
@given(msgs=st.lists(messages, max_size=8), sizes=st.lists(st.integers(1, 300), max_size=8))
def test_many_messages_arbitrary_chunks(msgs, sizes):
    sender = FrameCodec()
    wire = b"".join(sender.send(m) for m in msgs)
    assert feed(FrameCodec(), wire, sizes) == msgs


@settings(max_examples=15, deadline=None)
@given(msgs=st.lists(messages, min_size=1, max_size=4))
def test_one_byte_at_a_time(msgs):
    wire = b"".join(FrameCodec().send(m) for m in msgs)
    assert feed(FrameCodec(), wire, [1]) == msgs


def test_body_may_be_any_bytes_like():
    codec = FrameCodec()
    for body in (bytearray(b"abc"), memoryview(b"abc")):
        codec.receive_data(codec.send(TaskBinary(7, body)))
        got = codec.next_event()
        assert got == TaskBinary(7, b"abc")
        assert type(got.body) is bytes


def test_messages_are_frozen():
    msg = KillTask(1, "why")
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.task_id = 2  # type: ignore[misc]


def test_clean_eof_between_frames_is_closed():
    codec = FrameCodec()
    codec.receive_data(codec.send(StopExecutor("bye")))
    codec.receive_data(b"")
    assert codec.next_event() == StopExecutor("bye")
    assert codec.next_event() is CLOSED
    assert codec.next_event() is CLOSED
    with pytest.raises(LocalProtocolError):
        codec.receive_data(b"more")


# -- hostile input ---------------------------------------------------------------------

def check_hostile(chunks: list[bytes], max_frame_size: int = 1 << 16) -> None:
    """Feed ``chunks`` then EOF: only messages, NEED_DATA, CLOSED or RemoteProtocolError;
    after an error, every later next_event() raises it again."""
    codec = FrameCodec(max_frame_size)
    error = None
    try:
        for chunk in [*(c for c in chunks if c), b""]:
            codec.receive_data(chunk)
            for ev in drain(codec):
                assert ev is NEED_DATA or ev is CLOSED or isinstance(ev, Message)
                if isinstance(ev, Message):
                    assert MESSAGE_TYPES[ev.TYPE] is type(ev)
                    # A decoded message is valid: it re-encodes and decodes the same
                    # (compared as bytes: a float field may hold a NaN).
                    again = FrameCodec()
                    wire = again.send(ev)
                    again.receive_data(wire)
                    assert again.send(again.next_event()) == wire
    except RemoteProtocolError as exc:
        error = exc
    if error is not None:
        for _ in range(3):
            with pytest.raises(RemoteProtocolError):
                codec.next_event()


@FAST
@given(data=st.binary(max_size=2000), sizes=st.lists(st.integers(1, 64), max_size=6))
def test_arbitrary_bytes(data, sizes):
    sizes = sizes or [len(data) or 1]
    chunks = []
    pos = i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        chunks.append(data[pos:pos + n])
        pos += n
        i += 1
    check_hostile(chunks)


@FAST
@given(msgs=st.lists(messages, max_size=3), junk=st.binary(max_size=300))
def test_valid_frames_then_junk(msgs, junk):
    wire = b"".join(FrameCodec().send(m) for m in msgs)
    check_hostile([wire, junk])


# Frames with a well-formed prefix and a msgpack header of arbitrary shape: exercises the
# header checks rather than the length checks.
header_objs = st.one_of(
    values,
    st.lists(values, max_size=6),
    st.builds(lambda code, rest: [code, *rest],
              st.sampled_from([*MESSAGE_TYPES, 0, 99, -1, True, 2**40]),
              st.lists(values, max_size=6)),
)


@FAST
@given(header=header_objs, body=st.binary(max_size=50), extra=st.binary(max_size=4))
def test_arbitrary_headers(header, body, extra):
    raw = msgpack.packb(header, use_bin_type=True) + extra
    check_hostile([PREFIX.pack(len(raw), len(body)) + raw + body])


@FAST
@given(msgs=st.lists(messages, min_size=1, max_size=4), data=st.data())
def test_truncated_frames(msgs, data):
    codec = FrameCodec()
    frames = [codec.send(m) for m in msgs]
    wire = b"".join(frames)
    cut = data.draw(st.integers(0, len(wire) - 1))
    whole = 0
    boundary = 0
    for f in frames:
        if boundary + len(f) > cut:
            break
        boundary += len(f)
        whole += 1
    rx = FrameCodec()
    rx.receive_data(wire[:cut])
    rx.receive_data(b"")
    got = [rx.next_event() for _ in range(whole)]
    assert got == msgs[:whole]
    if cut == boundary:
        assert rx.next_event() is CLOSED
    else:
        with pytest.raises(RemoteProtocolError, match="closed mid-frame"):
            rx.next_event()
        with pytest.raises(RemoteProtocolError):
            rx.next_event()


# -- specific rejections ---------------------------------------------------------------

def test_oversized_frame_rejected_from_its_prefix():
    codec = FrameCodec(max_frame_size=1024)
    codec.receive_data(PREFIX.pack(1000, 100)[:7])
    assert codec.next_event() is NEED_DATA
    codec.receive_data(PREFIX.pack(1000, 100)[7:])  # only the 8-byte prefix so far
    with pytest.raises(RemoteProtocolError) as info:
        codec.next_event()
    assert "1100" in str(info.value)
    assert "1024" in str(info.value)
    with pytest.raises(RemoteProtocolError):
        codec.next_event()


def test_frame_at_the_limit_is_accepted():
    body = b"x" * 100
    msg = TaskBinary(1, body)
    size = len(FrameCodec().send(msg)) - PREFIX.size
    codec = FrameCodec(max_frame_size=size)
    codec.receive_data(codec.send(msg))
    assert codec.next_event() == msg
    with pytest.raises(LocalProtocolError):
        FrameCodec(max_frame_size=size - 1).send(msg)


def test_sending_oversized_message_is_a_local_error():
    codec = FrameCodec(max_frame_size=1024)
    with pytest.raises(LocalProtocolError) as info:
        codec.send(TaskBinary(1, b"x" * 2000))
    message = str(info.value)
    assert "TaskBinary" in message
    assert "1024" in message
    assert str(2000 + len(msgpack.packb([4, 1]))) in message


def test_max_frame_size_bounds():
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameCodec(8)
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameCodec(1 << 32)  # lengths are u32 on the wire
    FrameCodec((1 << 32) - 1)


@pytest.mark.parametrize(("header", "match"), [
    ([6, True, "reason"], r"KillTask\.task_id has type bool"),
    ([6, 1.5, "reason"], r"KillTask\.task_id has type float"),
    ([6, 1, b"reason"], r"KillTask\.reason has type bytes"),
    ([6, 1], "KillTask frame has 1 header fields, expected 2"),
    ([6, 1, "r", "extra"], "KillTask frame has 3 header fields, expected 2"),
    ([10, {"not": "a list"}], r"Heartbeat\.running has type dict"),
    ([2, "e", b"m", b"n", "1", "h"], r"Register\.pid has type str"),
    ([99, 1], "unknown message type code 99"),
    ([True, 1, "r"], "not \\[type_code"),
    ([], "not \\[type_code"),
    ({"a": 1}, "not \\[type_code"),
    ("text", "not \\[type_code"),
])
def test_bad_headers_rejected(header, match):
    codec = FrameCodec()
    codec.receive_data(frame(header))
    with pytest.raises(RemoteProtocolError, match=match):
        codec.next_event()
    with pytest.raises(RemoteProtocolError, match=match):
        codec.next_event()


def test_body_on_bodyless_message_rejected():
    codec = FrameCodec()
    codec.receive_data(frame([6, 1, "r"], b"body"))
    with pytest.raises(RemoteProtocolError, match="KillTask frame carries a 4-byte body"):
        codec.next_event()


def test_empty_header_and_garbage_header_rejected():
    codec = FrameCodec()
    codec.receive_data(PREFIX.pack(0, 3) + b"abc")
    with pytest.raises(RemoteProtocolError, match="empty header"):
        codec.next_event()
    codec = FrameCodec()
    codec.receive_data(PREFIX.pack(1, 0) + b"\xc1")  # 0xc1 is never valid msgpack
    with pytest.raises(RemoteProtocolError, match="undecodable"):
        codec.next_event()
    codec = FrameCodec()
    raw = msgpack.packb([6, 1, "r"]) + b"\x00"  # trailing bytes inside the header
    codec.receive_data(PREFIX.pack(len(raw), 0) + raw)
    with pytest.raises(RemoteProtocolError, match="undecodable"):
        codec.next_event()


def test_body_message_without_body_bytes_gets_empty_body():
    codec = FrameCodec()
    codec.receive_data(frame([9, [[1, 0, 0, 5]]]))
    assert codec.next_event() == TaskStatuses([[1, 0, 0, 5]], b"")


@pytest.mark.parametrize("msg", [
    KillTask(True, "r"),           # bool where int expected
    KillTask("1", "r"),
    KillTask(1, b"r"),
    LaunchTasks(((1, 2, 3, 0, 0),)),  # a tuple would arrive as a list
    Heartbeat(None),
    TaskBinary(1, "not bytes"),
    KillTask(2**64, "r"),          # msgpack cannot encode it
    StopExecutor("\ud800"),       # not encodable as UTF-8
    LaunchTasks([object()]),
])
def test_unsendable_messages_are_local_errors(msg):
    with pytest.raises(LocalProtocolError):
        FrameCodec().send(msg)


def test_send_rejects_unregistered_classes():
    @dataclasses.dataclass(frozen=True)
    class Fake(Message):
        TYPE = 6
        _FIELDS = ("task_id", "reason")
        _TYPES = ((int,), (str,))
        _HAS_BODY = False
        task_id: int = 1
        reason: str = "r"

    with pytest.raises(LocalProtocolError, match="not a registered"):
        FrameCodec().send(Fake())


@FAST
@given(msg=messages, field=st.data())
def test_send_validates_like_receive(msg, field):
    """Whatever ``send`` accepts, ``next_event`` accepts and returns unchanged."""
    cls = type(msg)
    names = [f.name for f in dataclasses.fields(cls)]
    name = field.draw(st.sampled_from(names))
    bad = dataclasses.replace(msg, **{name: field.draw(values)})
    codec = FrameCodec()
    try:
        wire = codec.send(bad)
    except LocalProtocolError:
        return
    codec.receive_data(wire)
    assert codec.next_event() == bad


def test_large_buffers_are_compacted():
    """A long stream of frames does not keep every consumed byte buffered."""
    codec = FrameCodec()
    one = codec.send(TaskBinary(1, b"y" * 50_000))
    stream = one * 60
    codec.receive_data(stream + one[:10])
    for _ in range(60):
        assert codec.next_event() == TaskBinary(1, b"y" * 50_000)
    assert codec.next_event() is NEED_DATA
    assert codec.buffered == 10
    codec.receive_data(one[10:])
    assert codec.next_event() == TaskBinary(1, b"y" * 50_000)
    assert codec.buffered == 0


# The wire codes are the protocol: pinned, with the subsystem module of each message.
CATALOGUE = {
    "control": {"Challenge": 1, "Register": 2, "Registered": 3, "StopExecutor": 8,
                "Heartbeat": 10, "TaskChannel": 12, "RemoveBroadcast": 13, "RemoveShuffle": 14,
                "AskCommit": 50, "CommitAnswer": 51},
    "tasks": {"TaskBinary": 4, "LaunchTasks": 5, "KillTask": 6, "ForgetBinaries": 7,
              "TaskStatuses": 9, "MapOutputs": 11},
    "blocks": {"BlockAuthChallenge": 20, "BlockAuthResponse": 21,
               "BlockAuthConfirmation": 22, "OpenBlocks": 23, "StreamHandle": 24,
               "OpenBlocksFailure": 25, "ChunkFetchRequest": 26, "ChunkFetchSuccess": 27,
               "ChunkFetchFailure": 28, "CloseStream": 29, "RegisterBlockManager": 40,
               "BlockUpdates": 41, "BlockQuery": 42, "BlockLocations": 43, "RemoveRdd": 44,
               "RddRemoved": 45, "FetchBlock": 46, "UploadBlock": 47, "BlockReply": 48,
               "UploadBlockChunk": 49},
}


def test_the_catalogue_codes_are_pinned():
    found: dict[str, dict[str, int]] = {}
    for code, cls in MESSAGE_TYPES.items():
        module = cls.__module__.rsplit(".", 1)[-1]
        found.setdefault(module, {})[cls.__name__] = code
    assert found == CATALOGUE
