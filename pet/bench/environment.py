"""The environment a cell ran in: the code (git commit, dirty flag, package versions), the
machine, and the memory the cell used (recorded in every row)."""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

from ..utils.versions import git_commit  # noqa: F401  (re-exported: rows record it)


def machine_info(device: str | None) -> dict:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device or "auto",
    }
    try:
        info["sched_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        pass
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    return info


def versions() -> dict:
    from .. import __version__
    from ..utils.versions import package_versions

    return {"pet": __version__, **package_versions()}


class PeakMemory:
    """Samples this process's resident memory (and CUDA peak) while a cell runs."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss_mb() -> float:
        try:
            with open("/proc/self/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self.peak_rss_mb = self.rss_mb()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        except ImportError:  # pragma: no cover
            pass
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())

    @property
    def cuda_peak_mb(self) -> float | None:
        try:
            import torch

            if torch.cuda.is_available():
                return torch.cuda.max_memory_allocated() / 2**20
        except ImportError:  # pragma: no cover
            pass
        return None


def capture_environment(device: str | None) -> dict:
    """What every row of this run records about the code and the machine."""
    from .. import __version__

    commit, dirty = git_commit()
    return {"versions": versions(), "pet_version": __version__, "git_commit": commit, "git_dirty": dirty, "machine": machine_info(device)}
