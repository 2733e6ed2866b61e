"""PySpark parity: every public name of PySpark's RDD, SparkContext, StorageLevel,
Broadcast, Accumulator, SparkFiles, StatusTracker (and SparkConf, StatCounter,
BoundedFloat) exists in asyncspark with compatible parameters — the same names in the
same order, the same defaults — unless ``pyspark_api.json`` puts it out of scope (with
its reason) or defers it to another work item.

The list is committed (``pyspark_api.json``, made from PySpark 4.0.1's sources by
``extract_pyspark_api.py``); no installed PySpark is needed.
"""

from __future__ import annotations

import ast
import inspect
import json
import pathlib

import pytest

API = json.loads((pathlib.Path(__file__).with_name("pyspark_api.json")).read_text())
OUT = API["out_of_scope"]
DEFERRED = API["deferred"]
DEFAULTS_DIFFER = API["default_differences"]


def _targets() -> dict[str, list[type]]:
    """Where a PySpark user finds each class: the blocking facade first, then the async
    classes it forwards to."""
    import asyncspark
    from asyncspark import sync
    from asyncspark.accumulators import Accumulator, AccumulatorParam
    from asyncspark.context import StatusTracker

    return {
        "RDD": [sync.RDD],
        "SparkContext": [sync.SparkContext],
        "StorageLevel": [asyncspark.StorageLevel],
        "Broadcast": [asyncspark.Broadcast],
        "Accumulator": [Accumulator],
        "AccumulatorParam": [AccumulatorParam],
        "SparkFiles": [asyncspark.SparkFiles],
        "StatusTracker": [StatusTracker],
        "SparkConf": [asyncspark.SparkConf],
        "StatCounter": [asyncspark.StatCounter],
        "BoundedFloat": [asyncspark.BoundedFloat],
    }


TARGETS = _targets()


def _async_behind_facade() -> dict[str, type]:
    import asyncspark
    from asyncspark.context import Context

    return {"SparkContext": Context, "RDD": asyncspark.RDD}


# The async classes the facade wraps: a deferred name that appears there must also be
# added to the facade.
ASYNC_BEHIND_FACADE = _async_behind_facade()
MEMBERS = sorted((cls, name) for cls, members in API["classes"].items() for name in members)


def _find(cls: str, name: str):
    for target in TARGETS[cls]:
        for klass in target.__mro__:
            if name in vars(klass):
                return klass, vars(klass)[name]
    return None, None


def _pyspark_default(text: str):
    """PySpark's default expression, evaluated with asyncspark's names where it names
    one (``portable_hash``, ``StorageLevel``)."""
    import asyncspark
    from asyncspark.partitioner import portable_hash

    try:
        return ast.literal_eval(text)
    except ValueError:
        return eval(text, {"portable_hash": portable_hash,
                           "StorageLevel": asyncspark.StorageLevel})


def _same_default(expected_text: str, actual) -> bool:
    expected = _pyspark_default(expected_text)
    if expected_text.startswith("lambda"):
        probe = (object(), 1)
        return callable(actual) and actual(probe) == expected(probe)
    return type(actual) is type(expected) and actual == expected


@pytest.mark.parametrize(("cls", "name"), MEMBERS, ids=[f"{c}.{n}" for c, n in MEMBERS])
def test_pyspark_name(cls, name):
    key = f"{cls}.{name}"
    spec = API["classes"][cls][name]
    if key in OUT:
        return  # out of scope, with its reason (test_out_of_scope_entries_are_explained)
    _, member = _find(cls, name)
    if key in DEFERRED:
        assert member is None, (
            f"{key} exists now: remove it from 'deferred' in pyspark_api.json "
            f"(it was left to {DEFERRED[key]}) so that its parameters are checked")
        behind = ASYNC_BEHIND_FACADE.get(cls)
        assert behind is None or not hasattr(behind, name), (
            f"{behind.__name__}.{name} exists but the blocking facade's {cls} has no "
            f"{name}: add it to the facade (asyncspark/sync.py, sync_rdd.py), then remove "
            f"{key} from 'deferred'")
        return
    if spec["kind"] == "attribute":
        # Instance attributes are checked on live objects (test_facade_instances).
        return
    assert member is not None, f"asyncspark has no {key} (PySpark's {spec['kind']})"
    if spec["kind"] == "constant":
        return
    if spec["kind"] == "property":
        assert isinstance(member, property) or not callable(member), f"{key} is not a property"
        return
    if spec["kind"] == "classmethod":
        assert isinstance(member, (classmethod, staticmethod)), f"{key} is not a classmethod"
    fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
    assert callable(fn), f"{key} is not callable"
    _check_params(key, spec["params"], inspect.signature(fn))


def _check_params(key: str, expected: list[dict], sig: inspect.Signature) -> None:
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    P = inspect.Parameter
    for i, want in enumerate(expected):
        name = want["name"]
        if name.startswith("**"):
            assert any(p.kind is P.VAR_KEYWORD for p in params), f"{key}: no {name}"
            continue
        if name.startswith("*"):
            assert i < len(params), f"{key}: no {name}"
            assert params[i].kind is P.VAR_POSITIONAL, f"{key}: parameter {i} should be {name}"
            continue
        if want.get("kwonly"):
            got = next((p for p in params if p.name == name), None)
            assert got is not None, f"{key}: no keyword parameter {name!r}"
        else:
            assert i < len(params), f"{key}: missing parameter {name!r} (position {i})"
            got = params[i]
            assert got.name == name, f"{key}: parameter {i} is {got.name!r}, PySpark's {name!r}"
            assert got.kind in (P.POSITIONAL_OR_KEYWORD, P.POSITIONAL_ONLY), (
                f"{key}: parameter {name!r} is {got.kind}")
        if "default" in want:
            assert got.default is not P.empty, (
                f"{key}({name}) needs PySpark's default {want['default']}")
            if f"{key}.{name}" not in DEFAULTS_DIFFER:
                assert _same_default(want["default"], got.default), (
                    f"{key}({name}): default {got.default!r}, PySpark's is {want['default']}")
    for extra in params[len(expected):]:
        # asyncspark's own additions must not change a PySpark call's meaning
        if extra.name in {w["name"].lstrip("*") for w in expected}:
            continue
        assert extra.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD) or \
            extra.default is not P.empty, f"{key}: extra parameter {extra.name!r} without default"


def test_out_of_scope_entries_are_explained():
    for key, reason in {**OUT, **DEFAULTS_DIFFER}.items():
        cls, name = key.split(".")[:2]
        assert name in API["classes"][cls], f"{key} is not a PySpark name"
        assert len(reason) > 20, f"{key}: say why"
    for key, owner in DEFERRED.items():
        cls, name = key.split(".")
        assert name in API["classes"][cls], key
        assert owner, key
