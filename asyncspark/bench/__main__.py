"""``python -m asyncspark.bench``: the scheduler benchmarks (same as ``asyncspark bench``)."""

import sys

from .main import main

sys.exit(main(prog="python -m asyncspark.bench"))
