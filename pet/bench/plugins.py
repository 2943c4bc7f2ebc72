"""Experiment plugins: the Python modules an experiment file lists under ``imports`` (for
example a file that registers a method), imported only with the user's consent."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def import_plugins(exp: Any) -> None:
    """Import the file's ``imports`` (module names or ``.py`` paths relative to the file) so
    that methods they ``register`` can be named in ``methods``.

    Importing runs code, so it happens only when the user allowed it (``exp.allow_imports``,
    set from ``--allow-imports`` / ``load_experiment(..., allow_imports=True)``); otherwise an
    experiment that lists imports is a one-line ``ConfigError``."""
    if exp.imports and not exp.allow_imports:
        raise ConfigError(
            f"{exp.path or 'experiment'}: $.imports: the file asks to run Python code ({', '.join(exp.imports)}); "
            "fix: read those files, and if you trust them pass --allow-imports (Python: load_experiment(..., allow_imports=True))"
        )
    for i, mod in enumerate(exp.imports):
        try:
            if mod.endswith(".py"):
                p = Path(mod)
                if not p.is_absolute() and exp.path is not None:
                    p = exp.path.parent / p
                name = "pet_bench_plugin_" + hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:12]
                if name in sys.modules:
                    continue
                if not p.is_file():
                    raise FileNotFoundError(str(p))
                spec = importlib.util.spec_from_file_location(name, p)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            else:
                importlib.import_module(mod)
        except (ImportError, FileNotFoundError) as e:
            raise ConfigError(f"{exp.path or 'experiment'}: $.imports[{i}]: cannot import '{mod}' ({e}); fix: check the module name or path") from None

