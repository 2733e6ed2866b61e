"""Which ``ClusterBackend`` a master URL names, and the ``ExecutorSpec`` the configuration
asks for: ``local``/``local[N]``/``local[*]``/``local[N,F]`` -> ``LocalBackend``; ``ray``
(address from ``RAY_ADDRESS``, or a local Ray started for you) and ``ray://HOST:PORT`` (Ray
Client) -> ``RayBackend``; ``slurm`` and ``slurm://PARTITION`` -> ``SlurmBackend`` (the
cluster the SLURM commands reach, e.g. through ``SLURM_CONF``)."""

from __future__ import annotations

from ...conf import Config
from ...errors import ConfigError
from .cluster import ClusterBackend, ExecutorSpec

__all__ = ["cluster_backend", "executor_spec", "master_kind"]


def master_kind(master: str) -> tuple[str, str | None]:
    """``("local", None)`` for the ``local`` forms (checked by ``parse_master``),
    ``("ray", address)`` for ``ray`` (address None) and ``ray://HOST:PORT``,
    ``("slurm", partition)`` for ``slurm`` (partition None) and ``slurm://PARTITION``."""
    m = master.strip()
    if m == "slurm":
        return "slurm", None
    if m.startswith("slurm://"):
        partition = m[len("slurm://"):].rstrip("/")
        if not partition or not all(c.isalnum() or c in "_-." for c in partition):
            raise ConfigError(f"master {master!r}: slurm:// needs a partition name "
                              "(slurm://PARTITION), or use 'slurm'")
        return "slurm", partition
    if m == "ray":
        return "ray", None
    if m.startswith("ray://"):
        if not m[len("ray://"):]:
            raise ConfigError(f"master {master!r}: ray:// needs HOST:PORT")
        return "ray", m
    return "local", None


def cluster_backend(conf: Config) -> ClusterBackend:
    """The backend ``spark.master`` names (it makes the application's directory)."""
    kind, address = master_kind(conf.master)
    if kind == "ray":
        from .ray import RayBackend

        return RayBackend(conf, address)
    if kind == "slurm":
        from .slurm import SlurmBackend

        return SlurmBackend(conf, address)
    from .local import LocalBackend

    return LocalBackend(conf, conf.local_dir)


def executor_spec(conf: Config) -> ExecutorSpec:
    """``spark.executor.cores``/``memory``, ``asyncspark.ray.executorResource`` and the
    TLS settings' environment (``ASYNCSPARK_SSL_*``)."""
    from ...tls import executor_environment

    resource = conf.ray_executor_resource
    # TLS (spark.ssl.*): the files' paths reach every executor in its environment.
    return ExecutorSpec(cores=conf.executor_cores, memory=conf.executor_memory,
                        resources={resource: 1.0} if resource else {},
                        env=executor_environment(conf))
