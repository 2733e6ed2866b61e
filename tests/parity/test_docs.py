"""The docs site (``docs/``, ``mkdocs.yml``): its generated pages are those the code makes
now, its examples run, and its strict build refuses a broken reference.

The full strict build is a step of ``.ci/run`` (the DOCS section); here only a broken
copy is built, to show that strictness catches what it must.
"""

from __future__ import annotations

import doctest
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def test_generated_pages_are_current():
    out = subprocess.run([sys.executable, str(DOCS / "gen_pages.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_configuration_page_lists_every_key():
    from asyncspark.conf_keys import KNOWN_KEYS

    text = (DOCS / "configuration.md").read_text()
    missing = [k for k in KNOWN_KEYS if f"| `{k}` |" not in text]
    assert not missing
    assert f"{len(KNOWN_KEYS)} keys." in text


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    assert [p.name for p in PAGES if p.name not in nav] == []


@pytest.fixture(scope="module")
def sc():
    from asyncspark import SparkContext

    with SparkContext("local[2]", "doctests") as sc:
        yield sc


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page, sc):
    from asyncspark import StorageLevel

    parser = doctest.DocTestParser()
    test = parser.get_doctest(page.read_text(), {"sc": sc, "StorageLevel": StorageLevel},
                              page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out: list[str] = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
    if page.name in ("index.md", "async-api.md", "facade.md", "shared.md",
                     "pyspark-differences.md", "web-ui.md", "scheduler.md", "shuffle.md",
                     "storage.md", "observability.md"):
        assert test.examples, f"{page.name} should have runnable examples"


def test_strict_build_fails_on_a_broken_reference(tmp_path):
    import importlib.util

    if None in (importlib.util.find_spec("mkdocs"), importlib.util.find_spec("mkdocstrings")):
        pytest.skip("mkdocs and mkdocstrings (the docs extra: pip install -e '.[docs]') "
                    "are not installed")
    site = tmp_path / "src"
    shutil.copytree(DOCS, site / "docs")
    shutil.copy(ROOT / "mkdocs.yml", site / "mkdocs.yml")
    (site / "asyncspark").symlink_to(ROOT / "asyncspark")
    page = site / "docs" / "cluster.md"
    page.write_text(page.read_text() + "\nSee [the scheduler](no-such-page.md).\n")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                          str(tmp_path / "site")],
                         capture_output=True, text=True, cwd=site, timeout=300)
    assert out.returncode != 0, out.stderr
    assert "no-such-page.md" in out.stderr
    assert "Aborted with 1 warnings in strict mode" in out.stdout + out.stderr
