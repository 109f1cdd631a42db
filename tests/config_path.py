"""Follow the run config through ``rnnvision_kit.runner.run.train``: which core files it passes
through, and how often the path re-enters a file it has already left (issue 19).

How it counts, the same before and after a change:

- A call is *on the config's path* when one of its arguments is the ``RunConfig``, one of its
  sections (``config.data``, ``.model``, ``.train``, ``.eval``), a record holding the config
  as an attribute (``ctx.config``, ``built.config``, a ``Trainer``'s ``self.config``), or one
  of the settings' values (strings, floats and lists, compared by identity: small integers,
  ``True`` and ``None`` are shared by everything and are left out).
- Only calls of functions in ``rnnvision_kit/`` count (not plugins, not torch), each call site
  once (its first call): the path a reader follows, not a loop's repetitions.
- A call *re-enters* a file when it crosses from its caller's file (the nearest frame in the
  core: a decorator or a plugin in between does not count) into another file that an earlier
  call on the path already entered. A helper in the caller's own file is no crossing, and
  neither is the call of ``train`` itself.
- ``runner`` counts the same without the calls into the task (``TaskHandle`` methods: ``step``,
  ``report``...) and the runner events, and without what the task does inside them: calling
  the task is the runner's job, not a detour.

``python -m tests.config_path`` prints the path and the count per file.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

EVENTS = ("on_run_start", "on_epoch_end", "on_run_end", "on_exception")


@dataclass
class ConfigPath:
    """The calls on the config's path, in order: (caller file, callee file, function)."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)
    reentries: list[tuple[str, str, str]] = field(default_factory=list)
    in_task: set[tuple[str, str, str]] = field(default_factory=set)  # calls of or in the task

    def by_file(self) -> Counter[str]:
        return Counter(callee for _, callee, _ in self.reentries)

    def runner(self) -> list[tuple[str, str, str]]:
        """The re-entries of the runner's own path (not into the task or the events)."""
        return [call for call in self.reentries if call not in self.in_task]


def _facade(name: str) -> bool:
    """A call into the task (through its ``TaskHandle``) or into the runner events."""
    return name.startswith("TaskHandle.") or name.rpartition(".")[2] in EVENTS


def _leaves(section: Any) -> list[Any]:
    """A settings record's values that are compared by identity (see the module docstring)."""
    if not dataclasses.is_dataclass(section):
        return []
    values = [getattr(section, f.name) for f in dataclasses.fields(section)]
    return [v for v in values if isinstance(v, str | float | list | tuple) and v != ""]


def _carries(value: Any, parts: set[int]) -> bool:
    if id(value) in parts:
        return True
    try:
        held = object.__getattribute__(value, "config")
    except Exception:
        return False
    return id(held) in parts


def follow(run: Any, config: Any) -> ConfigPath:
    """Call ``run()`` and record the config's path through the core (see the module docstring)."""
    import rnnvision_kit

    core = Path(rnnvision_kit.__file__).resolve().parent
    sections = (config.data, config.model, config.train, config.eval)
    parts = {id(p) for p in (config, *sections) if p is not None}
    parts |= {id(v) for s in sections for v in _leaves(s)}
    path = ConfigPath()
    seen: set[Any] = set()
    entered: set[str] = set()

    def core_file(frame: FrameType | None) -> str | None:
        if frame is None:
            return None
        file = Path(frame.f_code.co_filename)
        return str(file.relative_to(core)) if file.is_relative_to(core) else None

    def core_caller(frame: FrameType) -> FrameType | None:
        back = frame.f_back
        while back is not None and core_file(back) is None:
            back = back.f_back
        return back

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee = core_file(frame)
        if callee is None:
            return
        code = frame.f_code
        back = core_caller(frame)
        if back is None:  # train itself
            return
        site = (back.f_code, back.f_lineno, code)
        if site in seen:
            return
        count = code.co_argcount + code.co_kwonlyargcount
        names = code.co_varnames[:count]
        if not any(_carries(frame.f_locals.get(name), parts) for name in names):
            return
        seen.add(site)
        caller = core_file(back) or "?"
        call = (caller, callee, code.co_qualname)
        path.calls.append(call)
        outer: FrameType | None = frame
        while outer is not None:
            if core_file(outer) is not None and _facade(outer.f_code.co_qualname):
                path.in_task.add(call)
                break
            outer = outer.f_back
        if caller != callee:
            if callee in entered:
                path.reentries.append(call)
            entered.add(callee)

    entered.add("runner/run.py")  # train's own file
    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return path


def tiny_run() -> ConfigPath:
    """The path of one tiny ``train`` (2 epochs, in-memory image data, one CPU thread)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import TensorDataset

    from rnnvision_kit import DataBundle, ImageSpec, RunConfig, StepOutput, Task, hookimpl
    from rnnvision_kit.classification import classification_metrics
    from rnnvision_kit.config import DataConfig, TrainConfig
    from rnnvision_kit.runner.pipeline import open_task
    from rnnvision_kit.runner.run import train
    from rnnvision_kit.testing import plugin_host

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(32, 1, 4, 4, generator=g), torch.randint(0, 2, (32,), generator=g)
    data = TensorDataset(images, labels)
    spec = ImageSpec(("a", "b"), 1, 4, 4, (0.5,), (0.3,))

    class TinyTask(Task):
        def default_config(self) -> RunConfig:
            return RunConfig(
                task="tiny",
                data=DataConfig(source="tiny", batch_size=8),
                train=TrainConfig(epochs=2, schedule="none"),
            )

        def build_model(self, ctx: Any) -> torch.nn.Module:
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))

        def step(self, ctx: Any, model: torch.nn.Module, batch: Any) -> StepOutput:
            x, y = batch
            logits = model(x)
            return StepOutput(F.cross_entropy(logits, y), logits.detach(), y)

        def metrics(self, ctx: Any) -> Any:
            return classification_metrics(ctx)

    class Plugin:
        @hookimpl
        def rnnkit_register_tasks(self, register: Any) -> None:
            register("tiny", TinyTask, kind="image")

        @hookimpl
        def rnnkit_register_datasets(self, register: Any) -> None:
            register("tiny", lambda config: DataBundle(data, data, data, spec), kind="image")

    host = plugin_host(tiny=Plugin())
    config = TinyTask().default_config()
    options: dict[str, Any] = {"quiet": True, "echo": lambda *_: None}
    if "task" in inspect.signature(train).parameters:  # (train opened the task itself before)
        options["task"] = open_task(host.registries, "tiny")  # as the CLI does, before train
    with tempfile.TemporaryDirectory() as out:
        config.out_dir = out
        return follow(lambda: train(host.registries, config, **options), config)


if __name__ == "__main__":
    found = tiny_run()
    for call in found.calls:
        mark = "  <- re-enters" if call in found.reentries else ""
        mark += " (task/events)" if mark and call in found.in_task else ""
        print(f"{call[0]:28} -> {call[1]:28} {call[2]}{mark}")
    print(f"re-entries: {len(found.reentries)}  {dict(found.by_file())}")
    print(f"re-entries of the runner's own path: {len(found.runner())}")
