"""Regenerate the ``classes`` part of ``pyspark_api.json`` from PySpark's sources.

Not a test: run by hand when moving to a new PySpark version, on an unpacked sdist
(``pip download pyspark==X --no-deps`` and untar it; nothing is imported)::

    python tests/parity/extract_pyspark_api.py /tmp/pyspark-4.0.1/pyspark

It reads the classes' public methods, properties, class methods and class-level
attributes with ``ast``, and keeps the hand-written lists of the JSON (``out_of_scope``,
``deferred``, ``default_differences``) and the instance attributes added below.
"""

from __future__ import annotations

import ast
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).with_name("pyspark_api.json")
SOURCES = {
    "RDD": "core/rdd.py", "BoundedFloat": "core/rdd.py", "SparkContext": "core/context.py",
    "StorageLevel": "storagelevel.py", "Broadcast": "core/broadcast.py",
    "Accumulator": "accumulators.py", "AccumulatorParam": "accumulators.py",
    "SparkFiles": "core/files.py", "StatusTracker": "core/status.py", "SparkConf": "conf.py",
    "StatCounter": "statcounter.py",
}
DUNDERS = {"__init__", "__new__", "__add__", "__repr__", "__iadd__", "__str__", "__enter__",
           "__exit__", "__eq__"}
# Attributes PySpark sets on instances (in __init__), not visible at class level.
INSTANCE_ATTRIBUTES = {
    "SparkContext": ["master", "appName", "sparkHome", "environment", "pythonExec",
                     "pythonVer"],
    "RDD": ["ctx", "partitioner", "is_cached", "is_checkpointed", "has_resource_profile"],
    "Accumulator": ["aid"],
    "StorageLevel": ["useDisk", "useMemory", "useOffHeap", "deserialized", "replication"],
}


def _params(fn: ast.FunctionDef) -> list[dict]:
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    out: list[dict] = []
    for p, d in zip(pos, defaults, strict=True):
        if p.arg not in ("self", "cls"):
            out.append({"name": p.arg, **({"default": ast.unparse(d)} if d else {})})
    if a.vararg:
        out.append({"name": "*" + a.vararg.arg})
    for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        out.append({"name": p.arg, "kwonly": True,
                    **({"default": ast.unparse(d)} if d else {})})
    if a.kwarg:
        out.append({"name": "**" + a.kwarg.arg})
    return out


def _members(node: ast.ClassDef) -> dict:
    members: dict = {}
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if item.name.startswith("_") and item.name not in DUNDERS:
                continue
            decos = [ast.unparse(d) for d in item.decorator_list]
            if "overload" in decos or any(d.endswith(".setter") for d in decos):
                continue
            kind = next((k for k in ("property", "classmethod", "staticmethod")
                         if k in decos), "method")
            members[item.name] = ({"kind": kind} if kind == "property"
                                  else {"kind": kind, "params": _params(item)})
        elif isinstance(item, (ast.AnnAssign, ast.Assign)):
            target = item.target if isinstance(item, ast.AnnAssign) else item.targets[0]
            if isinstance(target, ast.Name) and not target.id.startswith("_"):
                members.setdefault(target.id, {"kind": "attribute"})
    return members


def main(root: str) -> None:
    base = pathlib.Path(root)
    classes: dict = {}
    for cls, rel in SOURCES.items():
        tree = ast.parse((base / rel).read_text(encoding="utf-8"))
        node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
        classes[cls] = _members(node)
        if cls == "BoundedFloat":
            classes[cls]["__new__"]["kind"] = "staticmethod"
        for name in INSTANCE_ATTRIBUTES.get(cls, ()):
            classes[cls][name] = {"kind": "attribute"}
    tree = ast.parse((base / "storagelevel.py").read_text(encoding="utf-8"))
    for n in tree.body:  # StorageLevel.X = StorageLevel(...) after the class
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Attribute) \
                and ast.unparse(n.targets[0].value) == "StorageLevel":
            classes["StorageLevel"][n.targets[0].attr] = {"kind": "constant",
                                                          "value": ast.unparse(n.value)}
    api = json.loads(HERE.read_text())
    api["classes"] = classes
    HERE.write_text(json.dumps(api, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
