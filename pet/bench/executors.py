"""Executors: who computes the bench runner's cells.

An executor is any object with ``submit(fn, *args) -> concurrent.futures.Future`` and a
``capacity`` (cells in flight at once); optionally ``prepare(exp, cells, data)``, called once
by the driver before the first submit. The driver (:mod:`pet.bench.driver`)
alone locks cells and writes the results store; an executor only computes rows.

* :class:`LocalExecutor` — each cell at once, in this process (the default).
* :class:`RayExecutor` — each cell as a Ray task with declared resources, on a local Ray
  instance (started here when no address is given) or on a cluster (``address="auto"`` or
  ``ray://host:10001``). Needs the ``ray`` extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import Future
from typing import Any, Callable, Sequence

from ..errors import ConfigError, PetError, first_line


class LocalExecutor:
    """Computes each submitted cell at once, in this process (the default executor).

    ``threads``: torch's intra-op threads for the cells, set here (``pet bench --threads``,
    whose default is :func:`pet.utils.threads.default_threads`); None leaves torch as it is."""

    capacity = 1

    def __init__(self, threads: int | None = None):
        self.threads = threads
        if threads is not None:
            from ..utils.threads import apply_threads

            apply_threads(threads)

    def submit(self, fn: Callable, *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 — handed to the driver like a remote failure
            fut.set_exception(e)
        return fut


class CellLostError(PetError):
    """A cell's worker died (killed, out of memory, node lost) more often than allowed."""


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the `ray` package; fix: pip install -e \".[ray]\" (or pip install 'ray[default]')") from None
    return ray


def _run_remote(fn: Callable, args: tuple, plugins: Any) -> Any:
    """What a Ray worker runs: the experiment's plugin imports (a fresh worker has none of the
    driver's registered methods), then the cell. Runs in the worker process."""
    if plugins is not None:
        from .plugins import import_plugins

        import_plugins(plugins)
    return fn(*args)


class RayExecutor:
    """Runs every cell as a Ray task.

    ``num_cpus`` / ``num_gpus``: resources one cell declares (fractional GPUs let several small
    models share one device). ``max_retries``: how often a cell whose worker died is run again
    before it is handed back as failed (:class:`CellLostError`); an exception raised by the
    method itself is not retried (it would fail again) and reaches the driver unchanged.
    ``address``: an existing cluster (``"auto"``, ``"ray://head:10001"``); ``None`` starts a
    local instance with ``local_cpus`` CPUs (default: all) and ``local_gpus`` GPUs (default:
    those visible). ``capacity`` (cells in flight) defaults to what the cluster's resources
    hold at once. Threads: each worker's torch uses ``num_cpus`` threads (Ray sets
    ``OMP_NUM_THREADS`` to the task's CPUs), so set the same for a local run to compare scores.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        max_retries: int = 2,
        *,
        local_cpus: int | None = None,
        local_gpus: int | None = None,
        capacity: int | None = None,
        runtime_env: dict | None = None,
    ):
        if num_cpus < 0 or num_gpus < 0:
            raise ConfigError(f"RayExecutor: num_cpus={num_cpus}, num_gpus={num_gpus}; fix: declare non-negative resources per cell")
        if num_gpus > 1 and num_gpus != int(num_gpus):
            raise ConfigError(f"RayExecutor: num_gpus={num_gpus}; fix: a fraction below 1 or a whole number of GPUs per cell")
        if max_retries < 0:
            raise ConfigError(f"RayExecutor: max_retries={max_retries}; fix: 0 or more")
        ray = _import_ray()
        self.ray = ray
        self.num_cpus, self.num_gpus, self.max_retries = num_cpus, num_gpus, int(max_retries)
        self._plugins: Any = None
        self._started_here = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
            if runtime_env:
                kw["runtime_env"] = runtime_env
            if address is None:
                kw.update(num_cpus=local_cpus, num_gpus=local_gpus)
            ray.init(address=address, **kw)
            self._started_here = True
        res = ray.cluster_resources()
        fits = []
        if num_cpus > 0:
            fits.append(math.floor(res.get("CPU", 0) / num_cpus + 1e-9))
        if num_gpus > 0:
            fits.append(math.floor(res.get("GPU", 0) / num_gpus + 1e-9))
            if res.get("GPU", 0) < num_gpus:
                raise ConfigError(f"RayExecutor: each cell asks for {num_gpus} GPU but the Ray cluster has {res.get('GPU', 0)}; fix: --ray-num-gpus 0, or join a cluster with GPUs")
        if num_cpus > 0 and res.get("CPU", 0) < num_cpus:
            raise ConfigError(f"RayExecutor: each cell asks for {num_cpus} CPUs but the Ray cluster has {res.get('CPU', 0)}; fix: lower --ray-num-cpus")
        self.capacity = int(capacity) if capacity else max(1, min(fits) if fits else 1)
        self._task = ray.remote(_run_remote).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_retries=self.max_retries, retry_exceptions=False,
        )

    def prepare(self, exp: Any, cells: Sequence[Any], data: Any) -> None:
        """Driver side, before the first cell: every cell's few-shot split is written (and kept
        in the data cache that travels with the cell) here, so workers on other machines never
        write into the results folder; workers import the experiment's plugins."""
        for c in cells:
            data.split(c)
        self._plugins = exp if getattr(exp, "imports", None) else None

    def submit(self, fn: Callable, *args: Any) -> Future:
        ref = self._task.remote(fn, args, self._plugins)
        out: Future = Future()
        out.set_running_or_notify_cancel()
        ray = self.ray

        def done(f: Future) -> None:
            try:
                out.set_result(f.result())
            except ray.exceptions.RayTaskError as e:  # the method raised: hand over its own error
                cause = getattr(e, "cause", None)
                out.set_exception(cause if isinstance(cause, BaseException) else RuntimeError(str(e).splitlines()[0]))
            except ray.exceptions.RayError as e:  # worker died / OOM-killed / node lost, after the retries
                out.set_exception(CellLostError(
                    f"the worker computing this cell died {self.max_retries + 1} time(s) ({type(e).__name__}: {first_line(e)}); "
                    "fix: look for out-of-memory or killed workers in the Ray logs, raise --ray-num-cpus/--ray-num-gpus per cell, then re-run (done cells are kept)"
                ))
            except BaseException as e:  # noqa: BLE001
                out.set_exception(e)

        ref.future().add_done_callback(done)
        return out

    def shutdown(self) -> None:
        """Stop the local Ray instance if this executor started it."""
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()
            self._started_here = False

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def make_executor(kind: str, *, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0, max_retries: int = 2,
                  threads: int | None = None) -> Any:
    """The CLI's ``--executor local|ray`` (``threads``: the local executor's; Ray gives each
    cell its ``num_cpus``)."""
    if kind == "local":
        return LocalExecutor(threads)
    if kind == "ray":
        return RayExecutor(address=address or os.environ.get("RAY_ADDRESS") or None, num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)
    raise ConfigError(f"--executor {kind}: unknown; fix: local or ray")
