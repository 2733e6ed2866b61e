"""A task's failure report bigger than a frame keeps the exception's type, with its
message and traceback cut (issue 11, item 9)."""

from __future__ import annotations

import pytest

from asyncspark.transport.messages.tasks import decode_failure, encode_failure


class Opaque(Exception):
    """An exception whose constructor cannot be called with a message."""

    def __init__(self, blob: bytes, code: int) -> None:
        super().__init__(blob, code)
        self.blob = blob


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize("limit", [4096, 64 << 10, 1 << 20])
def test_huge_message_is_cut_and_keeps_its_type(limit):
    exc = _raised(ValueError("start " + "x" * (4 << 20) + " end"))
    payload = encode_failure(exc, limit)
    assert len(payload) <= limit
    reason = decode_failure(payload)
    assert type(reason.exception) is ValueError
    assert reason.message.startswith("ValueError: start xxx")
    assert reason.message.endswith("xxx end")
    assert "bytes cut" in reason.message
    assert "Traceback" in reason.remote_traceback
    assert len(reason.remote_traceback) < limit


def test_huge_exception_state_keeps_the_type_name():
    exc = _raised(Opaque(b"\0" * (2 << 20), 3))
    payload = encode_failure(exc, 64 << 10)
    assert len(payload) <= 64 << 10
    reason = decode_failure(payload)
    assert reason.message.startswith("Opaque: ")
    assert reason.exception is None or type(reason.exception) is Opaque


def test_small_reports_are_unchanged():
    exc = _raised(KeyError("k"))
    assert encode_failure(exc, 1 << 20) == encode_failure(exc)
    assert type(decode_failure(encode_failure(exc, 1 << 20)).exception) is KeyError
