"""The public surface is deliberate: this test pins it."""

import subprocess
import sys

import asyncspark

EXPECTED = {
    "RDD", "Accumulator", "AccumulatorParam", "AsyncSparkError", "BoundedFloat", "Broadcast",
    "ConfigError", "SparkContext", "SparkFiles",
    "Context", "ContextStoppedError",
    "ExecutorLostError", "JobCancelledError", "JobFailedError", "JobRejectedError", "ProtocolError",
    "RemoteProtocolError", "SerializationError", "SparkConf", "SparkListener", "StatCounter",
    "StorageLevel", "TaskContext", "TransportError", "__version__", "run",
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


def test_storage_levels_as_pyspark():
    from asyncspark import StorageLevel

    names = {n for n in vars(StorageLevel) if n.isupper() or n.startswith(("DISK", "MEMORY"))}
    assert {"DISK_ONLY", "DISK_ONLY_2", "DISK_ONLY_3", "MEMORY_ONLY", "MEMORY_ONLY_2",
            "MEMORY_ONLY_SER", "MEMORY_ONLY_SER_2", "MEMORY_AND_DISK", "MEMORY_AND_DISK_2",
            "MEMORY_AND_DISK_SER", "MEMORY_AND_DISK_SER_2", "MEMORY_AND_DISK_DESER",
            "OFF_HEAP", "NONE"} == names
    assert repr(StorageLevel.OFF_HEAP) == "StorageLevel(True, True, True, False, 1)"
    assert repr(StorageLevel.DISK_ONLY_2) == "StorageLevel(True, False, False, False, 2)"
    assert str(StorageLevel.MEMORY_AND_DISK_SER_2) == "Disk Memory Serialized 2x Replicated"
    assert StorageLevel(False, True, False, False) == StorageLevel.MEMORY_ONLY
    # PySpark's flags and str(); the engine keeps live objects for memory levels
    assert str(StorageLevel.MEMORY_ONLY) == "Memory Serialized 1x Replicated"
    assert repr(StorageLevel.MEMORY_AND_DISK) == "StorageLevel(True, True, False, False, 1)"
    assert str(StorageLevel.MEMORY_AND_DISK_DESER) == "Disk Memory Deserialized 1x Replicated"


def test_driver_only_markers():
    """serializers.refuse_nested_use recognises RDDs and the Context by a class marker."""
    from asyncspark.context import Context
    from asyncspark.rdd import RDD
    from asyncspark.serializers import DRIVER_ONLY

    assert getattr(RDD, DRIVER_ONLY) == "rdd"
    assert getattr(Context, DRIVER_ONLY) == "context"
