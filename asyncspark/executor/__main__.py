"""``python -m asyncspark.executor``: an executor process (started by a backend, never by hand).

A backend gives it everything in its environment, never on its command line (which every
local user can read): ``ASYNCSPARK_DRIVER`` (host:port), ``ASYNCSPARK_EXECUTOR_ID``,
``ASYNCSPARK_BIND_HOST``, ``ASYNCSPARK_LOCAL_DIR`` and the secret (see
``scheduler/backends/cluster.py``). The ``--driver``/``--executor-id``/``--local-dir``/
``--bind-host`` arguments still work and win over the environment.

``ASYNCSPARK_PARENT_PID``: the process this executor must die with (the driver, or the
Ray actor that started it). On Linux a parent-death signal (``prctl(PR_SET_PDEATHSIG,
SIGKILL)``) kills it the moment that process dies, even while a task holds the GIL (the
executor's own once-a-second parent watchdog needs the GIL); elsewhere the watchdog alone
notices.
"""

import os
import signal
import sys

from .executor import main

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where there
    is no ``prctl`` (not Linux, or no libc to reach it)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _argv_from_env(argv: list[str]) -> list[str]:
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    for flag, var in (("--driver", "ASYNCSPARK_DRIVER"),
                      ("--executor-id", "ASYNCSPARK_EXECUTOR_ID"),
                      ("--local-dir", "ASYNCSPARK_LOCAL_DIR"),
                      ("--bind-host", "ASYNCSPARK_BIND_HOST")):
        value = os.environ.get(var)
        if flag not in given and value:
            argv = [*argv, f"{flag}={value}"]
    return argv


def _run() -> int:
    parent = os.environ.get("ASYNCSPARK_PARENT_PID")
    if parent:
        set_parent_death_signal()
        # The parent may have died before the signal was asked for: then we have been
        # handed to another process already.
        if os.getppid() != int(parent):
            print("executor: its parent process is gone; exiting", file=sys.stderr)
            return 3
    return main(_argv_from_env(sys.argv[1:]))


sys.exit(_run())
