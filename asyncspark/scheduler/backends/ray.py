"""RayBackend: executors on a Ray cluster (``Context("ray")``, ``Context("ray://HOST:PORT")``).

A ``ClusterBackend`` (``cluster.py``): Ray only provides the processes. Each executor is
a Ray actor (``num_cpus`` = ``spark.executor.cores``, ``memory`` =
``spark.executor.memory``, one unit of ``asyncspark.ray.executorResource`` when set, so
executors land only on nodes offering it) that starts the unchanged
``python -m asyncspark.executor`` as its child, with the driver's address, its executor
id, the node's IP as bind host and the per-application secret in the child's environment
(never its arguments). The child runs in a session of its own, dies with the actor
(parent-death signal) and exits by itself when it loses the driver.

Actors have ``max_restarts=0``: a lost executor is replaced by a new one with a new id.
Loss is the first of: the executor's connection dropping or its heartbeat timing out
(``manager.py``), the actor's exit long-poll (``wait_exit``) returning, or a
``RayActorError`` (then ``host_lost`` says whether the actor's node is dead).

The first executors go into a placement group (``asyncspark.ray.placementStrategy``:
SPREAD by default, PACK, STRICT_SPREAD, STRICT_PACK), one bundle each; replacements reuse
its free bundles, executors beyond it (scaling up) are placed with Ray's SPREAD
scheduling; scaled to 0 executors, the group is removed (its bundles would keep the
resources reserved). With dynamic allocation (``spark.dynamicAllocation.enabled``) there
is no placement group: every executor is placed with SPREAD and frees its resources when
it is removed. Blocking Ray calls (``ray.init``, actor creation, ``ray.kill``, placement
groups) run in threads, never on the event loop; actor results are awaited as refs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

from ...conf import Config
from ...errors import ConfigError
from .cluster import ExecutorSpec, ProcessAllocator, executor_environment
from .local import _app_dir
from .manager import describe_exit

try:
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError
except ImportError:  # pragma: no cover - exercised where ray is missing
    ray = None

__all__ = ["RayBackend"]

log: logging.Logger = logging.getLogger("asyncspark.backend")

_STOP_GRACE_S = 3.0


class ExecutorActor:
    """The Ray actor that runs one executor process on its node (an async actor: its
    methods run on one event-loop thread, the thread the child is started from, which
    lives as long as the actor, so the child's parent-death signal fires with it)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.root: str | None = None

    async def start(self, env: dict[str, str], executor_id: str,
                    local_dir: str | None) -> tuple[str, int, str]:
        host = ray.util.get_node_ip_address()
        self.root = tempfile.mkdtemp(prefix=f"asyncspark-ray-{executor_id}-", dir=local_dir)
        work = os.path.join(self.root, f"executor-{executor_id}")
        os.mkdir(work, 0o700)  # private, made here: the executor refuses any other
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCSPARK_")}
        child_env.update(env)
        child_env["ASYNCSPARK_BIND_HOST"] = host
        child_env["ASYNCSPARK_LOCAL_DIR"] = work
        child_env["ASYNCSPARK_PARENT_PID"] = str(os.getpid())
        # Forked from this loop's thread, which lives as long as the actor (the child's
        # parent-death signal is tied to the thread); Popen returns once it is exec'd.
        self.proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "asyncspark.executor"], env=child_env,
            stdin=subprocess.DEVNULL, start_new_session=True)
        return host, self.proc.pid, ray.get_runtime_context().get_node_id()

    async def wait_exit(self) -> int:
        """The long-poll: returns the child's exit code once it has exited."""
        assert self.proc is not None
        code = await asyncio.to_thread(self.proc.wait)
        self._remove_dir()
        return code

    async def stop(self, grace: float) -> int:
        assert self.proc is not None
        if self.proc.poll() is None and grace > 0:
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), grace)
            except TimeoutError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        code = await asyncio.to_thread(self.proc.wait)
        self._remove_dir()
        return code

    def _remove_dir(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


class _Handle:
    __slots__ = ("actor", "bundle", "node_id")

    def __init__(self, actor, node_id: str | None, bundle) -> None:
        self.actor, self.node_id, self.bundle = actor, node_id, bundle


class RayBackend(ProcessAllocator):
    """Executors as Ray actors (see the module docstring)."""

    def __init__(self, conf: Config, address: str | None = None) -> None:
        if ray is None:
            raise ConfigError(
                "master 'ray' needs the ray package: pip install 'asyncspark[ray]'")
        super().__init__(start_backoff=conf.start_backoff,
                         max_start_backoff=conf.max_start_backoff)
        self.conf = conf
        self.address: str | None = address if address is not None else os.environ.get("RAY_ADDRESS")
        self.local_root = _app_dir(conf.local_dir)  # the driver's, private
        self.namespace: str = f"asyncspark-{uuid.uuid4().hex[:12]}"
        self._own_ray = False
        self._connected = False
        self._host: str | None = None
        self._actor_cls = None
        self._pg = None
        self._free_bundles: list[int] = []
        self._pg_settled = asyncio.Event()  # no placement group is being created
        self._pg_settled.set()
        self._bundle_freed = asyncio.Event()
        self._closing = False
        self.actors: dict[str, _Handle] = {}

    # -- connection ----------------------------------------------------------------------

    async def connect(self) -> None:
        if self._connected:
            return
        await asyncio.to_thread(self._connect)
        self._connected = True

    def _connect(self) -> None:
        if not ray.is_initialized():
            kwargs = {}
            node_ip = self.conf.ray_node_ip
            if node_ip:
                kwargs["_node_ip_address"] = node_ip
            if not self.address:  # a local Ray started for us: its files go with ours
                kwargs["_temp_dir"] = os.path.join(self.local_root, "ray")
            ray.init(address=self.address, namespace=self.namespace,
                     log_to_driver=True, configure_logging=False, **kwargs)
            self._own_ray = True
        self._host = self.conf.raw.get("asyncspark.rpc.host") or ray.util.get_node_ip_address()
        self._actor_cls = ray.remote(ExecutorActor)

    def advertise_host(self) -> str:
        if self._host is None:
            raise RuntimeError("RayBackend.connect() first")
        return self._host

    async def start(self, driver_address: tuple[str, int], secret: str) -> None:
        await self.connect()
        await super().start(driver_address, secret)

    def set_target(self, n: int, spec: ExecutorSpec | None = None) -> None:
        # With dynamic allocation executors come and go: a placement group would keep
        # their resources reserved after they went. Scaled to 0, the group is released.
        first = (self._pg is None and n > 0 and not self.actors
                 and not self.conf.dyn_enabled)
        super().set_target(n, spec)
        self._release_idle_group()
        if first:
            self._pg = "creating"
            self._pg_settled.clear()
            task = asyncio.get_running_loop().create_task(self._make_placement_group(n))
            task.add_done_callback(lambda t: t.exception())

    async def _make_placement_group(self, n: int) -> None:
        try:
            await self._placement_group(n)
        finally:
            if self._pg == "creating":
                self._pg = None
            self._pg_settled.set()

    async def _placement_group(self, n: int) -> None:
        from ray.util.placement_group import placement_group

        bundle = {"CPU": float(self._spec.cores), **self._spec.resources}
        if self._spec.memory:
            bundle["memory"] = float(self._spec.memory)

        def create():
            pg = placement_group([dict(bundle) for _ in range(n)],
                                 strategy=self.conf.ray_placement_strategy)
            ready = pg.wait(timeout_seconds=self.conf.registration_timeout)
            return pg, ready

        try:
            pg, ready = await asyncio.to_thread(create)
        except Exception as exc:
            log.warning("no Ray placement group (%s): placing executors one by one", exc)
            self._pg = None
            return
        if self._closed:
            await asyncio.to_thread(ray.util.remove_placement_group, pg)
            return
        if not ready:
            log.warning("Ray placement group of %d executors not ready within %ss: "
                        "placing executors one by one", n, self.conf.registration_timeout)
            await asyncio.to_thread(ray.util.remove_placement_group, pg)
            self._pg = None
            return
        self._pg = pg
        self._free_bundles = list(range(n))

    # -- processes -----------------------------------------------------------------------

    async def _spawn(self, executor_id: str, spec: ExecutorSpec):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        await self._pg_settled.wait()  # the first executors wait for their bundles
        opts: dict = {"num_cpus": spec.cores, "max_restarts": 0, "max_task_retries": 0,
                      "resources": dict(spec.resources)}
        if spec.memory:
            opts["memory"] = spec.memory
        await self._bundle_of_a_stopping_executor()
        bundle = None
        if self._pg is not None and self._free_bundles:
            bundle = self._free_bundles.pop(0)
            opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                self._pg, placement_group_bundle_index=bundle)
        else:
            opts["scheduling_strategy"] = "SPREAD"
        env = executor_environment(
            {}, driver=self.driver, secret=self.secret,  # type: ignore[arg-type]
            executor_id=executor_id, bind_host="", local_dir="", parent_pid=None,
            extra={"ASYNCSPARK_UVLOOP": "1" if self.conf.use_uvloop else "0",
                   "ASYNCSPARK_DRIVER_PATH": os.pathsep.join(p for p in sys.path if p),
                   **spec.env})
        for key in ("ASYNCSPARK_BIND_HOST", "ASYNCSPARK_LOCAL_DIR"):
            env.pop(key, None)  # the actor sets them on its node
        actor = await asyncio.to_thread(
            lambda: self._actor_cls.options(**opts).remote())  # type: ignore[union-attr]
        handle = _Handle(actor, None, bundle)
        self.actors[executor_id] = handle
        try:
            host, pid, handle.node_id = await actor.start.remote(
                env, executor_id, self.conf.raw.get("spark.local.dir"))
        except BaseException:
            self.actors.pop(executor_id, None)
            self._release_bundle(bundle)
            await asyncio.to_thread(ray.kill, actor, no_restart=True)
            raise
        return handle, host, pid

    def _release_bundle(self, bundle) -> None:
        if bundle is not None and self._pg not in (None, "creating"):
            self._free_bundles.append(bundle)
            self._bundle_freed.set()

    async def _bundle_of_a_stopping_executor(self) -> None:
        """Every bundle taken but an executor being stopped holds one (a replacement
        asked for at once): wait for its bundle rather than place the new executor
        outside the group, where the group's reservations may leave no room at all."""
        deadline = asyncio.get_running_loop().time() + self.conf.registration_timeout
        while self._pg not in (None, "creating") and not self._free_bundles and any(
                ex.killing is not None and ex.executor_id in self.actors
                for ex in self._executors.values()):
            self._bundle_freed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._bundle_freed.wait(), remaining)
            except TimeoutError:
                return

    def _release_idle_group(self) -> None:
        """Target 0 and no executor left: remove the placement group (its bundles
        reserve the cluster's resources); a later target makes a new one."""
        if self._target or self.actors or self._closed or self._pg in (None, "creating"):
            return
        pg, self._pg, self._free_bundles = self._pg, None, []
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(ray.util.remove_placement_group, pg))
        self._terminating.add(task)  # close() waits for it
        task.add_done_callback(self._terminating.discard)

    async def _wait(self, handle: _Handle) -> tuple[int | None, bool, str]:
        eid = next((e for e, h in self.actors.items() if h is handle), "?")
        try:
            code = await handle.actor.wait_exit.remote()
            how = describe_exit(code)
            host_lost = False
            await asyncio.to_thread(ray.kill, handle.actor, no_restart=True)
        except RayActorError as exc:
            code = None
            host_lost = await asyncio.to_thread(self._node_dead, handle.node_id)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            how = ("lost its node" if host_lost else "lost its Ray actor") + f": {first}"
        finally:
            self.actors.pop(eid, None)
            self._release_bundle(handle.bundle)
            self._release_idle_group()
        return code, host_lost, how

    @staticmethod
    def _node_dead(node_id: str | None) -> bool:
        if node_id is None:
            return False
        try:
            for node in ray.nodes():
                if node.get("NodeID") == node_id:
                    return not node.get("Alive", True)
        except Exception:
            return False
        return True

    async def _terminate(self, handle: _Handle) -> None:
        grace = _STOP_GRACE_S if self._closing else 0.0
        try:
            await asyncio.wait_for(handle.actor.stop.remote(grace), grace + 2.0)
        except (TimeoutError, RayActorError, GetTimeoutError):
            pass
        await asyncio.to_thread(ray.kill, handle.actor, no_restart=True)

    async def close(self) -> None:
        self._closing = True
        await super().close()

    def release_now(self) -> None:
        """Synchronously (interpreter exit, SIGTERM, ``stop()``'s last step): kill every
        actor (its executor dies with it) and remove the driver's scratch directory."""
        self._closed = True
        if ray is not None and ray.is_initialized():
            for handle in list(self.actors.values()):
                try:
                    ray.kill(handle.actor, no_restart=True)
                except Exception:  # the cluster may be gone
                    pass
        shutil.rmtree(self.local_root, ignore_errors=True)

    async def _release(self) -> None:
        if self._pg not in (None, "creating"):
            await asyncio.to_thread(ray.util.remove_placement_group, self._pg)
            self._pg = None
        if self._own_ray and ray.is_initialized():
            await asyncio.to_thread(ray.shutdown)
        await asyncio.to_thread(shutil.rmtree, self.local_root, True)
