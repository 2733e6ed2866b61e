"""Remote tracebacks name the user's file and line (cloudpickle alone writes
``<dynamic-code>``), under one header."""

from __future__ import annotations

import pytest

from asyncspark import JobFailedError, SparkContext


def _fails_on_two(x):
    return 1 / (x - 2)  # the failing line


def test_remote_traceback_names_the_user_line():
    with SparkContext("local[1]", "tracebacks") as sc:
        with pytest.raises(JobFailedError) as info:
            sc.parallelize([1, 2, 3], 1).map(_fails_on_two).collect()
    message = str(info.value)
    line = _fails_on_two.__code__.co_firstlineno + 1
    assert f'File "{__file__}", line {line}, in _fails_on_two' in message
    assert "1 / (x - 2)  # the failing line" in message  # the source line, via linecache
    assert "<dynamic-code>" not in message
    assert message.count("(most recent call last)") == 1
    assert f'File "{__file__}", line {line}' in info.value.remote_traceback


def test_closure_keeps_its_file_name_when_pickled():
    import pickle

    from asyncspark.serializers import dumps_closure

    def local(y):
        return y + 1

    restored = pickle.loads(dumps_closure(local, "test"))
    assert restored(1) == 2
    assert restored.__code__.co_filename == __file__
