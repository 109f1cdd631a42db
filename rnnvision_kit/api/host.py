"""What every front-door call needs around the runner: the plugin host (entry-point plugins,
``RNNKIT_PLUGINS`` and the caller's local plugins, as ``rnnkit --plugin``), and the caller's
process state kept: the torch thread count, which a run's ``train.threads`` sets only while
the call runs, and the matplotlib backend (the runner's and the tasks' plots switch to
``Agg``, which would stop a notebook's inline figures)."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence

from rnnvision_kit.plugins import PluginHost, build_host


def plugin_host(plugins: Sequence[str] = ()) -> PluginHost:
    """A host with the installed plugins, ``RNNKIT_PLUGINS`` and ``plugins`` (modules or
    ``.py`` files) loaded, as ``rnnkit --plugin`` loads them."""
    if isinstance(plugins, str):
        plugins = (plugins,)
    return build_host(tuple(str(p) for p in plugins))


@contextlib.contextmanager
def caller_state() -> Iterator[None]:
    """Restore the caller's torch thread count (the runner sets the run's ``train.threads``,
    one for the built-in tasks, while it builds and trains) and matplotlib backend (when
    pyplot was imported) after the block."""
    import torch

    threads = torch.get_num_threads()
    backend = _pyplot_backend()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if backend is not None and _pyplot_backend() != backend:
            import matplotlib.pyplot as plt

            plt.switch_backend(backend)


def _pyplot_backend() -> str | None:
    """The matplotlib backend, when the caller imported pyplot (else None: nothing to keep),
    its module loaded: a notebook's inline backend sets up its figure display when its module
    is imported while it is the backend, which switching back to it later would miss."""
    if "matplotlib.pyplot" not in sys.modules:
        return None
    import matplotlib

    backend = str(matplotlib.get_backend())
    if backend.startswith("module://"):
        importlib.import_module(backend.removeprefix("module://"))
    return backend
