"""The SLURM backend's pure logic, without a cluster: the master URL, squeue's answer, wait
statuses, sbatch directives and options, the configuration checks, and the executor job
script itself run by ``sh`` with fake ``scontrol`` and a fake interpreter on PATH (its
start handshake, its scratch directory, its exit status)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time

import pytest

from asyncspark.conf import Config
from asyncspark.errors import ConfigError
from asyncspark.scheduler.backends.factory import master_kind
from asyncspark.scheduler.backends.slurm import SlurmBackend
from asyncspark.scheduler.backends.slurm_jobs import (
    job_script,
    parse_directives,
    parse_squeue,
    sbatch_options,
    wait_status_to_code,
)


def test_master_urls():
    assert master_kind("slurm") == ("slurm", None)
    assert master_kind(" slurm://gpu-a100 ") == ("slurm", "gpu-a100")
    for bad in ("slurm://", "slurm://a/b", "slurm://a b"):
        with pytest.raises(ConfigError, match="partition"):
            master_kind(bad)


def test_squeue_rows():
    out = ("12|RUNNING|n1|0|None|asyncspark-executor 4242 127.0.0.21|\n"
           "13|PENDING|(null)|0|Resources|(null)|\n"
           "14|CANCELLED by 0|n2|36608|None|a|foreign|comment|\n"
           "15|FAILED|n2|2304|NonZeroExitCode|asyncspark-executor x y|\n")
    rows = parse_squeue(out)
    assert (rows["12"].state, rows["12"].node, rows["12"].pid, rows["12"].host) == \
        ("RUNNING", "n1", 4242, "127.0.0.21")
    assert rows["12"].active
    assert (rows["13"].node, rows["13"].reason, rows["13"].pid) == ("", "Resources", 0)
    assert rows["14"].state == "CANCELLED"
    assert not rows["14"].active
    assert rows["14"].status == 36608
    assert rows["15"].pid == 0  # a malformed announcement is none


def test_wait_status_to_exit_code():
    assert wait_status_to_code(None) is None
    assert wait_status_to_code(0) == 0
    assert wait_status_to_code(2 << 8) == 2
    assert wait_status_to_code(9) == -9          # the job itself killed by SIGKILL
    assert wait_status_to_code(137 << 8) == -9   # its executor killed: the script's 128+9
    assert wait_status_to_code(143 << 8) == -15


def test_directives_and_options():
    assert parse_directives("--qos=short; #SBATCH --constraint=ib\n\n--exclusive") == \
        ["--qos=short", "--constraint=ib", "--exclusive"]
    assert parse_directives(None) == []
    with pytest.raises(ConfigError, match="qos=short"):
        parse_directives("qos=short")
    opts = sbatch_options(cores=2, memory=(1 << 30) + 1, partition="p", account=None,
                          time_limit="1:00:00", output="/dev/null")
    assert "--cpus-per-task=2" in opts
    assert "--mem=1025M" in opts
    assert "--partition=p" in opts
    assert "--time=1:00:00" in opts
    assert not any(o.startswith("--account") for o in opts)


def test_configuration_errors(tmp_path, monkeypatch):
    conf = Config.from_items([("asyncspark.slurm.partition", "a"),
                              ("spark.local.dir", str(tmp_path))])
    with pytest.raises(ConfigError, match="another partition"):
        SlurmBackend(conf, "b")
    with pytest.raises(ConfigError, match="not an sbatch option"):
        SlurmBackend(Config.from_items([("asyncspark.slurm.directives", "oops")]))
    backend = SlurmBackend(conf, "a")
    try:
        monkeypatch.setenv("PATH", str(tmp_path))  # no SLURM commands there
        with pytest.raises(ConfigError, match="sbatch"):
            backend._check()
    finally:
        import shutil

        shutil.rmtree(backend.local_root, ignore_errors=True)


def _executable(path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_node(tmp_path):
    """A PATH with a fake ``scontrol`` (show node: NodeAddr 10.1.2.3; update: records the
    comment) and a fake interpreter that records its pid and environment, then exits
    with ``$FAKE_EXIT`` (or sleeps when it is 'sleep')."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "scontrol", f"""#!/bin/sh
case "$*" in
  *"show node"*) echo "NodeName=n9 Arch=x86_64 NodeAddr=10.1.2.3 NodeHostName=h9" ;;
  *update*) for a in "$@"; do case "$a" in Comment=*) echo "${{a#Comment=}}" \\
        > {tmp_path}/comment;; esac; done ;;
esac
""")
    _executable(bin_dir / "python", f"""#!/bin/sh
echo "$$ $ASYNCSPARK_BIND_HOST $ASYNCSPARK_LOCAL_DIR $ASYNCSPARK_PARENT_PID $*" \\
    > {tmp_path}/executor
[ -d "$ASYNCSPARK_LOCAL_DIR" ] && stat -c %a "$ASYNCSPARK_LOCAL_DIR" >> {tmp_path}/executor
[ "$FAKE_EXIT" = sleep ] && exec sleep 30
exit "$FAKE_EXIT"
""")
    script = tmp_path / "job.sh"
    script.write_text(job_script("asyncspark-test", ["--qos=x"]))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "77",
           "SLURMD_NODENAME": "n9", "ASYNCSPARK_EXECUTOR_ID": "5",
           "ASYNCSPARK_PYTHON": str(bin_dir / "python"),
           "ASYNCSPARK_SLURM_SCRATCH": str(tmp_path / "scratch")}
    return tmp_path, script, env


def _wait_file(path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} not written within {timeout}s")


def _start(script, env, **extra):
    return subprocess.Popen(["sh", str(script)], env={**env, **extra},
                            stdin=subprocess.DEVNULL, start_new_session=True)


def test_job_script_announces_then_starts_on_the_go_signal(fake_node):
    tmp, script, env = fake_node
    assert "#SBATCH --job-name=asyncspark-test\n#SBATCH --qos=x\n" in script.read_text()
    proc = _start(script, env, FAKE_EXIT="3")
    try:
        tag, pid, host = _wait_file(tmp / "comment").split()
        assert (tag, host) == ("asyncspark-executor", "10.1.2.3")
        time.sleep(0.3)
        assert not (tmp / "executor").exists()  # not before the driver says go
        os.kill(proc.pid, signal.SIGUSR1)
        assert proc.wait(10) == 3  # the executor's exit code is the job's
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    epid, bind, local_dir, parent, flag, module, mode = _wait_file(tmp / "executor").split()
    assert epid == pid  # the announced pid is the executor's (the subshell exec'd)
    assert bind == "10.1.2.3"
    assert parent == str(proc.pid)
    assert (flag, module) == ("-m", "asyncspark.executor")
    assert mode == "700"
    assert local_dir.endswith("/executor-5")
    assert local_dir.startswith(str(tmp / "scratch" / "asyncspark-slurm-77-"))
    assert not os.path.exists(os.path.dirname(local_dir))  # removed on exit


def test_job_script_passes_a_killed_executor_on(fake_node):
    tmp, script, env = fake_node
    proc = _start(script, env, FAKE_EXIT="sleep")
    try:
        _wait_file(tmp / "comment")
        os.kill(proc.pid, signal.SIGUSR1)
        epid = int(_wait_file(tmp / "executor").split()[0])
        os.kill(epid, signal.SIGKILL)
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 128 + 9
    assert wait_status_to_code(code << 8) == -9
    assert not list((tmp / "scratch").iterdir())  # its scratch directory went too
