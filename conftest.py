"""Doctests of the package (``pytest --doctest-modules``, on by default in pyproject):
each module's examples get ``sc``, a blocking-facade ``SparkContext("local[2]")`` made
for that module and stopped after it (one runs per process, as in PySpark), and
``StorageLevel``."""

from __future__ import annotations

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(scope="module")
def _doctest_sc():
    from asyncspark import SparkContext

    with SparkContext("local[2]", "doctests") as sc:
        yield sc


@pytest.fixture(autouse=True)
def _doctest_globals(request, doctest_namespace):
    if isinstance(request.node, DoctestItem):
        from asyncspark import StorageLevel

        doctest_namespace["sc"] = request.getfixturevalue("_doctest_sc")
        doctest_namespace["StorageLevel"] = StorageLevel
