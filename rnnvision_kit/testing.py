"""Helpers for plugin authors' tests: a host with only the plugins under test, and a conformance check.

    from rnnvision_kit.testing import check_plugin, plugin_host
    from rnnkit_my_plugin import plugin

    def test_conformance():
        host = plugin_host(my_plugin=plugin)
        assert all(result.ok for result in check_plugin(host, "my_plugin"))

Importing this module does not import torch; ``check_plugin`` does.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import cast

from rnnvision_kit.errors import PluginError, RegistryError, TaskError, one_line
from rnnvision_kit.plugins import PluginHost
from rnnvision_kit.task import DataBundle

SAMPLES = 8  # samples per split the check uses: enough for a batch, small enough to be quick
CHECK_SETTINGS = (  # one step, on the CPU, in full precision, without workers
    "train.epochs=1",
    "train.max_steps_per_epoch=1",
    "train.device=cpu",
    "train.precision=32",
    "data.eval_batch_size=null",
    "data.num_workers=0",
)


@dataclass
class CheckResult:
    """The outcome of checking one task (or one broken plugin, with ``task`` ``"-"``)."""

    task: str  # qualified name, plugin:task
    plugin: str
    ok: bool
    stage: str = ""  # where it failed: load, create, config, a Task method (build_data, step, ...), stateless
    error: str | None = None  # one line
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return "ok" if self.ok else f"FAIL ({self.stage})"


def _default_name(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return type(plugin).__name__.lower()


def plugin_host(
    *plugins: object, strict: bool = True, builtins: bool = False, **named: object
) -> PluginHost:
    """A PluginHost with only the core and the given plugin modules or objects (no entry points).

    Positional plugins are named after their module (``my_pkg.plugin``) or class; keyword ones
    after the keyword, e.g. ``plugin_host(mine=plugin)``, so that ``mine:task`` resolves. With
    ``builtins`` the built-in plugins are loaded too (their tasks and data sources: a task whose
    default data is ``digits`` needs them). With ``strict`` (the default) a plugin that fails to
    load raises PluginError instead of being listed as broken. ``RNNKIT_DISABLE_PLUGINS`` and
    ``RNNKIT_PLUGINS`` do not apply.
    """
    host = PluginHost(strict=strict)
    host.disabled = set()
    host.load_core()
    if builtins:
        host.load_entry_points(distribution="rnnvision-kit")
    for plugin in plugins:
        host.load_object(plugin, _default_name(plugin))
    for name, plugin in named.items():
        host.load_object(plugin, name)
    return host


def check_plugin(
    host: PluginHost,
    plugin_name: str | None = None,
    *,
    overrides: Sequence[str] = (),
    samples: int = SAMPLES,
    batch_size: int = 4,
) -> list[CheckResult]:
    """Check that every task ``plugin_name`` registers (all plugins' tasks when None) can build its
    data and model, take one training step (backward and optimizer step), evaluate and write its
    report, on the CPU and at most ``samples`` samples per split, and keeps no state on ``self``.
    Broken plugins are reported as failures too.
    """
    if plugin_name is not None and plugin_name not in {r.name for r in host.records.values()}:
        known = ", ".join(sorted({r.name for r in host.records.values()}))
        raise PluginError(f"unknown plugin {plugin_name!r} (loaded: {known})")
    results = [
        CheckResult("-", record.name, ok=False, stage="load", error=record.error)
        for record in host.broken
        if plugin_name in (None, record.name)
    ]
    for entry in host.registries.tasks:
        if plugin_name in (None, entry.plugin):
            results.append(check_task(host, entry.qualified_name, overrides, samples, batch_size))
    return results


def check_task(
    host: PluginHost,
    task_name: str,
    overrides: Iterable[str] = (),
    samples: int = SAMPLES,
    batch_size: int = 4,
) -> CheckResult:
    """Build, train one step and evaluate one task (see ``check_plugin``); never raises."""
    entry = host.registries.tasks.get(task_name)
    started = time.perf_counter()
    stage = "create"
    try:
        import torch

        from rnnvision_kit.runner.device import Precision, Runtime
        from rnnvision_kit.runner.evaluate import Evaluator
        from rnnvision_kit.runner.loop import Trainer
        from rnnvision_kit.runner.pipeline import build, configure, open_task
        from rnnvision_kit.task import ReportContext

        cpu = torch.device("cpu")
        runtime = Runtime(cpu, Precision("32", cpu))
        registries = host.registries
        task = open_task(registries, entry.qualified_name)
        stage = "config"
        config = configure(
            task, overrides=[*CHECK_SETTINGS, f"data.batch_size={batch_size}", *overrides]
        )
        stage = "build"
        built = build(task, registries, config, "check")
        assert built.data is not None
        data = _tiny(built.data, samples)
        stage = "train"
        evaluator = Evaluator(
            task=task, registries=registries, config=config, spec=data.spec, runtime=runtime
        )
        trainer = Trainer(
            task=task,
            config=config,
            model=built.model,
            data=data,
            runtime=runtime,
            evaluator=evaluator,
            quiet=True,
        )
        loss = trainer.fit({}).history[-1]["train/loss"]
        if not math.isfinite(loss):
            raise ValueError(f"training loss is {loss}")
        stage = "eval"
        model = trainer.model
        scalars, others = evaluator.evaluate(model, data.test, "test")
        monitored = config.train.monitor.replace("val/", "test/", 1)
        if monitored not in scalars:
            raise ValueError(f"metric {monitored!r} missing (got: {', '.join(scalars)})")
        stage = "report"
        with tempfile.TemporaryDirectory(prefix="rnnkit-check-") as folder:
            results = {**scalars, **others}
            report = ReportContext(
                Path(folder), "test", results, data.spec, config, model.eval(), data.test, cpu
            )
            with torch.inference_mode():
                task.report(report)
        stage = "stateless"
        kept = sorted(vars(task.task))
        if kept:
            raise ValueError(f"the task keeps state on self between calls: {', '.join(kept)}")
    except Exception as error:  # report, never raise: one broken task must not hide the others
        failure: BaseException = error
        if isinstance(error, TaskError) and error.__cause__ is not None:
            stage, failure = error.method, error.__cause__  # the task method and what it raised
        message = one_line(failure)
        if isinstance(failure, RegistryError) and "unknown" in message:
            message += " (the host holds only the core and the plugins given to plugin_host; "
            message += "plugin_host(..., builtins=True) adds the built-in ones)"
        elapsed = time.perf_counter() - started
        return CheckResult(entry.qualified_name, entry.plugin, False, stage, message, elapsed)
    elapsed = time.perf_counter() - started
    return CheckResult(entry.qualified_name, entry.plugin, True, seconds=elapsed)


def _tiny(data: DataBundle, samples: int) -> DataBundle:
    """``data`` with each split cut to its first ``samples`` samples."""
    from torch.utils.data import Subset

    splits = {"train": data.train, "val": data.val, "test": data.test}
    cut = {}
    for split, dataset in splits.items():
        length = len(cast(Sized, dataset))  # map-style (torch's Dataset declares no len)
        if length == 0:
            raise ValueError(f"the {split} split is empty")
        cut[split] = Subset(dataset, range(min(samples, length)))
    return DataBundle(cut["train"], cut["val"], cut["test"], spec=data.spec, skipped=data.skipped)
