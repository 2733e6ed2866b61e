"""The blocking facade as a PySpark user meets it: ``from asyncspark import
SparkContext``, lifecycle, the instance attributes of ``pyspark_api.json``, and the
methods added for parity (sampling, approximate actions, pickle and whole-file inputs,
addFile/SparkFiles) against plain-Python references, with Hypothesis."""

from __future__ import annotations

import gzip
import json
import math
import os
import pathlib
import random
import sys
import tarfile
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncspark import BoundedFloat, SparkConf, SparkContext, SparkFiles

API = json.loads((pathlib.Path(__file__).with_name("pyspark_api.json")).read_text())
PROPS = settings(max_examples=15, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def sc():
    with SparkContext("local[2]", "parity") as ctx:
        yield ctx


def test_repr_defaults_and_instance_attributes(sc):
    assert repr(sc) == "<SparkContext master=local[2] appName=parity>"
    assert sc.master == "local[2]"
    assert sc.appName == "parity"
    assert sc.pythonVer == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert sc.environment["PYTHONHASHSEED"] == "0"
    assert sc.sparkHome is None
    assert isinstance(sc.startTime, int)
    assert sc.sparkUser()
    rdd = sc.parallelize([1, 2])
    for cls, target in (("SparkContext", sc), ("RDD", rdd)):
        for name, spec in API["classes"][cls].items():
            key = f"{cls}.{name}"
            if key in API["out_of_scope"] or key in API["deferred"]:
                continue
            assert hasattr(target, name), f"the facade's {cls} has no {name}"
            if spec["kind"] in ("method", "classmethod"):
                assert callable(getattr(target, name)), key


def test_rdd_id_name_and_add(sc):
    a, b = sc.parallelize([1, 2], 2), sc.parallelize([3], 1)
    assert isinstance(a.id(), int)
    assert a.id() != b.id()
    assert a.setName("first").name() == "first"
    assert (a + b).collect() == [1, 2, 3]
    assert b"first" in a.toDebugString()
    assert not a.isCheckpointed()
    assert a.getCheckpointFile() is None


@PROPS
@given(data=st.lists(st.integers(-50, 50), max_size=60), num=st.integers(0, 80),
       replace=st.booleans(), seed=st.integers(0, 2**31))
def test_take_sample_sizes_and_membership(sc, data, num, replace, seed):
    rdd = sc.parallelize(data, 3)
    got = rdd.takeSample(replace, num, seed)
    want = num if replace and data else min(num, len(data))
    assert len(got) == want
    if replace:
        assert set(got) <= set(data)
    else:  # a sub-multiset
        left = list(data)
        for x in got:
            left.remove(x)
    assert rdd.takeSample(replace, num, seed) == got  # same seed, same sample


def test_take_sample_bounds(sc):
    rdd = sc.parallelize(range(10), 2)
    with pytest.raises(ValueError, match="Sample size cannot be negative"):
        rdd.takeSample(False, -1)
    with pytest.raises(ValueError, match="Sample size cannot be greater than"):
        rdd.takeSample(True, sys.maxsize)
    assert sorted(rdd.takeSample(False, 100, 1)) == list(range(10))
    assert sc.emptyRDD().takeSample(True, 5) == []


@PROPS
@given(data=st.lists(st.integers(), max_size=80),
       weights=st.lists(st.floats(0.1, 5.0), min_size=1, max_size=4),
       seed=st.integers(0, 2**32 - 1))
def test_random_split_partitions_the_data(sc, data, weights, seed):
    parts = sc.parallelize(data, 3).randomSplit(weights, seed)
    assert len(parts) == len(weights)
    got = [x for p in parts for x in p.collect()]
    assert sorted(got) == sorted(data)


def test_random_split_errors(sc):
    rdd = sc.parallelize(range(3))
    with pytest.raises(ValueError, match="Weights must be nonnegative"):
        rdd.randomSplit([1, -1])
    with pytest.raises(ValueError, match="Sum of weights must be positive"):
        rdd.randomSplit([0, 0])


def _reference_stratified(data, fractions, seed, slices):
    """PySpark's RDDStratifiedSampler, run by hand over the same slices."""
    out = []
    for split in range(slices):
        lo, hi = split * len(data) // slices, (split + 1) * len(data) // slices
        rng = random.Random(seed ^ split)
        for _ in range(10):
            rng.randint(0, 1)
        out.extend(kv for kv in data[lo:hi] if rng.random() < fractions[kv[0]])
    return out


@PROPS
@given(data=st.lists(st.tuples(st.sampled_from("abc"), st.integers()), max_size=60),
       fa=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_sample_by_key_as_pyspark(sc, data, fa, seed):
    fractions = {"a": fa, "b": 0.5, "c": 1.0}
    got = sc.parallelize(data, 3).sampleByKey(False, fractions, seed).collect()
    assert got == _reference_stratified(data, fractions, seed, 3)


def test_sample_by_key_errors(sc):
    with pytest.raises(ValueError, match="Negative fraction"):
        sc.parallelize([("a", 1)]).sampleByKey(False, {"a": -0.1})


@PROPS
@given(data=st.lists(st.integers(-1000, 1000), max_size=60))
def test_approximate_actions_finish_exact(sc, data):
    rdd = sc.parallelize(data, 3)
    assert rdd.countApprox(60_000) == len(data)
    s = rdd.sumApprox(60_000)
    assert isinstance(s, BoundedFloat)
    assert (float(s), s.confidence, s.low, s.high) == (sum(data), 1.0, sum(data), sum(data))
    m = rdd.meanApprox(60_000, 0.9)
    if data:
        assert m == pytest.approx(sum(data) / len(data))
        assert m.low == m.high == float(m)
    else:
        assert math.isnan(m)


def test_approximate_action_times_out_with_bounds(sc):
    def slow_after_first(i, it):
        if i > 0:  # killed when the approximate job times out (between short sleeps)
            import time
            for _ in range(600):
                time.sleep(0.05)
        return it

    rdd = sc.parallelize(range(100), 4).mapPartitionsWithIndex(slow_after_first)
    est = rdd.sumApprox(3000, 0.95)
    assert est.confidence == 0.95
    assert est.low < float(est) < est.high
    count = rdd.countApprox(3000)
    assert count == 100  # one partition of 25 counted: Poisson estimate 25 / (1/4)
    with pytest.raises(ValueError, match="timeout"):
        rdd.countApprox(-1)
    with pytest.raises(ValueError, match="confidence"):
        rdd.meanApprox(10, 1.5)
    assert sc.parallelize([1, 2]).count() == 2  # the timed-out jobs left nothing running


@PROPS
@given(data=st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none(),
                               st.tuples(st.integers(), st.floats(allow_nan=False))),
                     max_size=40), batch=st.integers(0, 7))
def test_pickle_file_round_trip(sc, tmp_path_factory, data, batch):
    path = str(tmp_path_factory.mktemp("pickle") / "out")
    sc.parallelize(data, 3).saveAsPickleFile(path, batch)
    assert sorted(os.listdir(path)) == ["_SUCCESS", "part-00000", "part-00001", "part-00002"]
    assert sc.pickleFile(path).collect() == data
    with pytest.raises(FileExistsError):
        sc.parallelize(data).saveAsPickleFile(path)


def test_whole_text_and_binary_files(sc, tmp_path):
    (tmp_path / "a.txt").write_text("alpha\nbeta\n")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"gamma"))
    (tmp_path / "_hidden").write_text("skipped")
    got = dict(sc.wholeTextFiles(str(tmp_path), 2).collect())
    assert got == {f"file:{tmp_path}/a.txt": "alpha\nbeta\n", f"file:{tmp_path}/b.txt.gz": "gamma"}
    raw = dict(sc.binaryFiles(str(tmp_path)).collect())
    assert raw[f"file:{tmp_path}/b.txt.gz"] == gzip.compress(b"gamma")
    assert dict(sc.wholeTextFiles(str(tmp_path / "a.txt"), use_unicode=False).collect()) == {
        f"file:{tmp_path}/a.txt": b"alpha\nbeta\n"}


@PROPS
@given(records=st.lists(st.binary(min_size=3, max_size=3), max_size=50))
def test_binary_records(sc, tmp_path_factory, records):
    f = tmp_path_factory.mktemp("rec") / "data.bin"
    f.write_bytes(b"".join(records))
    assert sc.binaryRecords(str(f), 3).collect() == records


def test_binary_records_refuses_partial_record(sc, tmp_path):
    (tmp_path / "odd.bin").write_bytes(b"12345")
    with pytest.raises(ValueError, match="not a multiple of recordLength 2"):
        sc.binaryRecords(str(tmp_path / "odd.bin"), 2)
    with pytest.raises(ValueError, match="recordLength must be a positive"):
        sc.binaryRecords(str(tmp_path / "odd.bin"), 0)


def test_add_file_archive_and_py_file(sc, tmp_path):
    (tmp_path / "lookup.txt").write_text("42")
    sc.addFile(str(tmp_path / "lookup.txt"))
    sc.addFile(str(tmp_path / "lookup.txt"))  # the same path again: a no-op
    other = tmp_path / "other"
    other.mkdir()
    (other / "lookup.txt").write_text("0")
    with pytest.raises(ValueError, match="already registered with a different path"):
        sc.addFile(str(other / "lookup.txt"))
    with tarfile.open(tmp_path / "bundle.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "lookup.txt", arcname="inner.txt")
    sc.addArchive(str(tmp_path / "bundle.tar.gz"))
    (tmp_path / "parity_helper_mod.py").write_text("def triple(x):\n    return 3 * x\n")
    sc.addPyFile(str(tmp_path / "parity_helper_mod.py"))
    with zipfile.ZipFile(tmp_path / "deps.zip", "w") as zf:
        zf.writestr("parity_zip_pkg/__init__.py", "K = 7\n")
    sc.addPyFile(str(tmp_path / "deps.zip"))
    assert str(tmp_path / "lookup.txt") in sc.listFiles
    assert sc.listArchives == [str(tmp_path / "bundle.tar.gz")]
    with open(SparkFiles.get("lookup.txt")) as fh:
        assert fh.read() == "42"

    def use(x):
        import parity_helper_mod
        import parity_zip_pkg

        with open(SparkFiles.get("lookup.txt")) as f1, \
                open(os.path.join(SparkFiles.get("bundle.tar.gz"), "inner.txt")) as f2:
            return int(f1.read()) + int(f2.read()) + parity_helper_mod.triple(x) \
                + parity_zip_pkg.K

    assert sc.parallelize([1, 2], 2).map(use).collect() == [42 + 42 + 3 + 7, 42 + 42 + 6 + 7]
    with pytest.raises(FileNotFoundError):
        sc.addFile(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"SparkFiles\.get takes the name"):
        SparkFiles.get("../etc/passwd")


@pytest.mark.parametrize(("codec", "ext"), [
    (None, ""), ("gzip", ".gz"), ("bzip2", ".bz2"), ("xz", ".xz"), ("zstd", ".zst"),
    ("org.apache.hadoop.io.compress.Lz4Codec", ".lz4")])
def test_save_and_read_compressed_through_file_urls(sc, tmp_path, codec, ext):
    lines = [f"line {i}" for i in range(100)] + ["", "last"]
    out = tmp_path / "out"
    sc.parallelize(lines, 3).saveAsTextFile(f"file://{out}", codec)
    assert sorted(os.listdir(out)) == ["_SUCCESS"] + [f"part-0000{i}{ext}" for i in range(3)]
    assert sc.textFile(f"file://{out}", 4).collect() == lines
    assert sorted(sc.wholeTextFiles(str(out)).values().collect()) == sorted(
        "\n".join(lines[a:b]) + "\n" for a, b in ((0, 34), (34, 68), (68, 102)))


@PROPS
@given(data=st.one_of(st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=40),
                      st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40)))
def test_ints_stay_ints_and_floats_stay_floats(sc, data):
    import operator

    rdd = sc.parallelize(data, 3)
    kind = type(data[0])
    for got, want in ((rdd.sum(), sum(data)), (rdd.fold(0, operator.add), sum(data)),
                      (rdd.reduce(operator.add), sum(data)), (rdd.max(), max(data)),
                      (rdd.min(), min(data)), (rdd.treeReduce(operator.add), sum(data)),
                      (rdd.aggregate(0, operator.add, operator.add), sum(data))):
        assert type(got) is kind
        assert got == (want if kind is int else pytest.approx(want))
    assert type(rdd.count()) is int
    assert type(rdd.mean()) is float
    assert all(type(c) is int for c in rdd.histogram(3)[1])


def test_get_or_create_returns_the_running_context(sc):
    assert SparkContext.getOrCreate() is sc
    with pytest.raises(ValueError, match="Cannot run multiple SparkContexts"):
        SparkContext("local[1]", "second")
    assert SparkConf().setAppName("x").get("spark.app.name") == "x"


def test_stop_then_a_new_context_with_pyspark_defaults(sc):
    """Last in the module: stops the module's context (a stopped one is gone for
    getOrCreate), then the PySpark defaults: master local[*] unless conf says."""
    thread = sc._thread
    sc.stop()
    sc.stop()  # idempotent
    assert not thread.is_alive()
    assert SparkContext._active_spark_context is None
    new = SparkContext.getOrCreate(SparkConf().set("spark.app.name", "fresh"))
    try:
        assert new is not sc
        assert (new.master, new.appName) == ("local[*]", "fresh")
        assert new.parallelize([1, 2, 3]).sum() == 6
    finally:
        new.stop()


def test_storage_levels_as_pyspark_and_live_objects_inside():
    from asyncspark import StorageLevel
    from asyncspark.rdd import _engine_level

    for name, spec in API["classes"]["StorageLevel"].items():
        if spec["kind"] == "constant":
            flags = spec["value"].removeprefix("StorageLevel(").removesuffix(")")
            want = [v.strip() == "True" if v.strip() in ("True", "False") else int(v)
                    for v in flags.split(",")]
            want += [1] * (5 - len(want))
            assert getattr(StorageLevel, name).to_wire() == want, name
    assert _engine_level(StorageLevel.MEMORY_ONLY).deserialized
    assert _engine_level(StorageLevel.MEMORY_AND_DISK_2) == StorageLevel(True, True, False,
                                                                         True, 2)
    assert _engine_level(StorageLevel.OFF_HEAP) == StorageLevel.OFF_HEAP
    assert _engine_level(StorageLevel.DISK_ONLY) == StorageLevel.DISK_ONLY


def test_rdd_repr_names_the_user_line():
    with SparkContext("local[1]", "repr") as sc:
        rdd = sc.parallelize([1, 2]).map(str)  # this line
        line = sys._getframe().f_lineno - 1
        assert repr(rdd) == f"MapPartitionsRDD[{rdd.id()}] at map at {__file__}:{line}"
        debug = rdd.cache().toDebugString().decode().splitlines()
        assert debug[0].startswith(f"(1) MapPartitionsRDD[{rdd.id()}] at map at ")
        assert debug[0].endswith("[Memory Serialized 1x Replicated]")
        assert debug[1].lstrip().startswith("+-ParallelCollectionRDD[")


def test_unsupported_constructor_arguments_are_refused():
    with pytest.raises(ValueError, match="environment"):
        SparkContext("local[1]", "x", environment={"A": "1"})
    with pytest.raises(ValueError, match="gateway"):
        SparkContext("local[1]", "x", gateway=object())
    assert SparkContext._active_spark_context is None
