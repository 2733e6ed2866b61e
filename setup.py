"""Build of the optional C extension ``asyncspark._speedups`` (the shuffle's per-record
loops); everything else is in pyproject.toml. Without a C compiler the build of the
extension fails softly (``optional=True``) and ``asyncspark/_accel.py`` uses its
pure-Python twins."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("asyncspark._speedups", ["asyncspark/_speedups.c"],
                             optional=True, extra_compile_args=["-O2"])])
