"""The public surface is deliberate: this test pins it."""

import subprocess
import sys

import asyncspark

EXPECTED = {
    "RDD", "Accumulator", "AccumulatorParam", "AsyncSparkError", "Broadcast", "ConfigError",
    "Context", "ContextStoppedError",
    "ExecutorLostError", "JobCancelledError", "JobFailedError", "ProtocolError",
    "RemoteProtocolError", "SerializationError", "SparkConf", "SparkListener", "StatCounter",
    "TaskContext", "TransportError", "__version__", "run",
}


def test_exported_names_are_pinned():
    assert set(asyncspark.__all__) == EXPECTED
    for name in asyncspark.__all__:
        assert getattr(asyncspark, name) is not None


def test_import_does_not_load_optional_parts():
    code = ("import sys, asyncspark; "
            "print(sorted(m for m in ('aiohttp', 'asyncspark.context', 'asyncspark.sync', "
            "'cloudpickle') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
