#!/usr/bin/env bash
# Install the benchmark peers into a separate environment, benchmarks/.venv (git-ignored):
# PySpark (with a Java 17+ runtime from Debian's openjdk-17-jre-headless when `java` is
# missing or older), and Dask with pandas and pyarrow. asyncspark's own environment is left
# alone: the venv sees its packages (--system-site-packages), so it runs the benchmarks with
# asyncspark, its peers and the same generators in one process:
#
#   bash benchmarks/peers/setup.sh
#   benchmarks/.venv/bin/python benchmarks/shuffle.py
#
# Idempotent: run it again to upgrade or to repair. PYTHON selects the base interpreter
# (default: python, else python3), VENV the environment's path (default: benchmarks/.venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# The interpreter asyncspark is installed in (`python -m pip install -e '.[bench]'`).
python="${PYTHON:-$(command -v python || command -v python3)}"
venv="${VENV:-$root/benchmarks/.venv}"

java_major() {
    # The major version of `java` on PATH (0 when there is none).
    command -v java >/dev/null 2>&1 || { echo 0; return; }
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

if [ "$(java_major)" -lt 17 ]; then
    echo "benchmarks/peers/setup.sh: no Java 17+ for PySpark; installing openjdk-17-jre-headless" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q openjdk-17-jre-headless
fi
echo "java: $(java -version 2>&1 | head -n1)" >&2

if ! "$python" -c "import asyncspark" 2>/dev/null; then
    echo "benchmarks/peers/setup.sh: $python cannot import asyncspark; run" \
         "\`$python -m pip install -e '.[bench]'\` in $root first" >&2
    exit 1
fi
[ -x "$venv/bin/python" ] || "$python" -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
import dask, distributed, pandas, pyarrow, pyspark
print(f"peers ready: PySpark {pyspark.__version__}, Dask {dask.__version__} "
      f"(distributed {distributed.__version__}), pandas {pandas.__version__}, "
      f"pyarrow {pyarrow.__version__}")
PY
