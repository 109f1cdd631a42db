"""The reference sections of ``docs/plugins.md``, generated from the code so that the two agree.

``python -m rnnvision_kit.reference --write docs/plugins.md`` rewrites the sections between the
markers: the hook reference (from ``rnnvision_kit.hookspecs``) and the contract reference (Task
methods, context records, data specs and item formats, public helpers, errors). A test checks
that the file is up to date.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rnnvision_kit import hookspecs
from rnnvision_kit.errors import RnnkitError

SECTIONS = ("hook reference", "contract reference")


def markers(section: str) -> tuple[str, str]:
    """The BEGIN and END comment lines around a generated section."""
    command = "python -m rnnvision_kit.reference --write docs/plugins.md"
    return f"<!-- BEGIN {section}: {command} -->", f"<!-- END {section} -->"


# ----------------------------------------------------------------------------- hook reference


def hook_specs() -> list[Callable[..., object]]:
    """The hook specifications of ``rnnvision_kit.hookspecs``, in the order they are defined."""
    marker = f"{hookspecs.PROJECT}_spec"
    specs = [f for _, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, marker)]
    return sorted(specs, key=lambda f: f.__code__.co_firstlineno)


def signature(spec: Callable[..., object], name: str | None = None) -> str:
    """``def name(arg: type, ...) -> type``, annotations as written in the source."""
    params: list[str] = []
    for param in inspect.signature(spec).parameters.values():
        if param.kind is param.KEYWORD_ONLY and not any(p.startswith("*") for p in params):
            params.append("*")
        stars = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}.get(param.kind, "")
        text = stars + param.name
        if param.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(param.annotation)}"
        if param.default is dataclasses.MISSING:
            text += " = MISSING"
        elif param.default is not inspect.Parameter.empty:
            text += f" = {param.default!r}"
        params.append(text)
    returns = spec.__annotations__.get("return")
    suffix = f" -> {_annotation(returns)}" if returns is not None else ""
    return f"def {name or spec.__name__}({', '.join(params)}){suffix}"


def _annotation(value: object) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def register_protocol(spec: Callable[..., object]) -> type | None:
    """The ``Register...`` Protocol a registration hook's ``register`` argument is typed with."""
    annotation = inspect.signature(spec).parameters.get("register")
    name = getattr(annotation, "annotation", None)
    protocol = getattr(hookspecs, name, None) if isinstance(name, str) else None
    return protocol if isinstance(protocol, type) else None


def register_signature(protocol: type) -> str:
    """``register(name: str, factory: ..., *, kind: str, ...) -> ...`` of a register Protocol."""
    call = protocol.__call__  # type: ignore[operator]
    text = signature(call).removeprefix("def __call__(").removeprefix("self, ")
    return f"register({text}"


def hook_reference() -> str:
    """The Markdown hook reference: a heading, the signature and the docstring of each hook,
    and for registration hooks the signature and docstring of their ``register``."""
    parts = []
    for spec in hook_specs():
        text = (
            f"### `{spec.__name__}`\n\n```python\n{signature(spec)}\n```\n\n"
            f"{inspect.getdoc(spec) or ''}\n"
        )
        protocol = register_protocol(spec)
        if protocol is not None:
            text += (
                f"\n```python\n{register_signature(protocol)}\n```\n\n"
                f"{inspect.getdoc(protocol) or ''}\n"
            )
        parts.append(text)
    return "\n".join(parts)


def hook_signature(spec: Callable[..., object]) -> str:
    """``def name(arg: type, ...) -> type`` of a hook specification, annotations as written."""
    return signature(spec)


# ------------------------------------------------------------------------- contract reference


def _fields(cls: type) -> list[tuple[str, str, str]]:
    """``(name, type, comment)`` of a dataclass's fields, comments from the source lines."""
    comments: dict[str, str] = {}
    for base in reversed(cls.__mro__[:-1]):  # a subclass's comment wins over its base's
        if dataclasses.is_dataclass(base):
            source = inspect.getsource(base)
            comments.update(re.findall(r"^\s+(\w+): [^#\n]*#\s*(.*)$", source, re.M))
    return [(f.name, str(f.type), comments.get(f.name, "")) for f in dataclasses.fields(cls)]


def _methods(cls: type, names: Sequence[str]) -> str:
    parts = []
    for name in names:
        function = getattr(cls, name)
        parts.append(
            f"```python\n{signature(function, name)}\n```\n\n{inspect.getdoc(function) or ''}\n"
        )
    return "\n".join(parts)


def record_reference(cls: type, methods: Sequence[str] = ()) -> str:
    """A record's heading, docstring, a table of its fields and its methods."""
    rows = "\n".join(
        f"| `{n}` | `{t}` | {c} |".replace(" | None`", " \\| None`") for n, t, c in _fields(cls)
    )
    text = f"#### `{cls.__name__}`\n\n{inspect.getdoc(cls) or ''}\n\n"
    text += f"| field | type | meaning |\n|---|---|---|\n{rows}\n"
    if methods:
        text += "\n" + _methods(cls, methods)
    return text


def function_reference(function: Callable[..., Any], qualified: str) -> str:
    return (
        f"#### `{qualified}`\n\n```python\n{signature(function)}\n```\n\n"
        f"{inspect.getdoc(function) or ''}\n"
    )


def contract_reference() -> str:
    """The Task methods, context records, data specs and item formats, public helpers and
    errors, each with its signature or fields and its docstring."""
    import rnnvision_kit as api
    from rnnvision_kit import config, dataspec, errors, registry, task, testing

    parts = ["### Task methods\n", inspect.getdoc(task.Task) or "", ""]
    parts.append(
        _methods(task.Task, ["default_config", "build_data", "build_model", "step", "metrics"])
    )
    parts.append(_methods(task.Task, ["update_metrics"]))
    parts.append("### Context records\n")
    parts.append(record_reference(task.DataContext, ["source", "open_source"]))
    for record in (task.ModelContext, task.StepContext):
        parts.append(record_reference(record))
    parts.append(record_reference(task.MetricsContext, ["metric"]))
    for record in (task.PredictContext, task.ReportContext):
        parts.append(record_reference(record))
    for record in (task.StreamContext, task.StreamFrame):
        parts.append(record_reference(record))
    parts.append(record_reference(task.ExportContext))
    parts.append("### What tasks return\n")
    for record in (task.DataBundle, task.StepOutput, task.DataCheck, task.Exportable):
        parts.append(record_reference(record))
    parts.append("### Data specs and item formats\n")
    parts.append((inspect.getdoc(dataspec) or "") + "\n")
    parts.append(record_reference(dataspec.DataSpec))
    for spec in (dataspec.ImageSpec, dataspec.VideoSpec, dataspec.SegmentationSpec):
        parts.append(record_reference(spec))
    parts.append("### Settings\n")
    parts.append(record_reference(config.DataConfig, ["require_path"]))
    parts.append(record_reference(config.EvalConfig))
    parts.append(record_reference(config.ModelConfig))
    parts.append(function_reference(config.setting, "rnnvision_kit.setting"))
    parts.append(record_reference(config.Rule))
    parts.append("### Helpers\n")
    parts.append(function_reference(registry.lazy, "rnnvision_kit.lazy"))
    parts.append(_classification_reference())
    for name in ("plugin_host", "check_plugin", "check_task"):
        parts.append(function_reference(getattr(testing, name), f"rnnvision_kit.testing.{name}"))
    parts.append(function_reference(api.warn, "rnnvision_kit.warn"))
    parts.append(_package_reference())
    parts.append("### Errors\n")
    rows = []
    for name in (
        "RnnkitError",
        "ConfigError",
        "DataError",
        "RegistryError",
        "PluginError",
        "TaskError",
        "CheckpointError",
        "RunInterrupted",
    ):
        doc = " ".join((inspect.getdoc(getattr(errors, name)) or "").split())
        rows.append(f"| `{name}` | {doc} |")
    parts.append("| error | when |\n|---|---|\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)


def _package_reference() -> str:
    """What ``rnnvision_kit.data``, ``.nn`` and ``.runner`` export, with a line each."""
    import importlib

    parts = []
    for name in ("rnnvision_kit.data", "rnnvision_kit.nn", "rnnvision_kit.runner"):
        module = importlib.import_module(name)
        rows = []
        for export in module.__all__:
            value = getattr(module, export)
            doc = inspect.getdoc(value) if callable(value) else ""
            first = (doc or "").split("\n\n")[0].replace("\n", " ")
            if inspect.isfunction(value):
                call = signature(value).removeprefix("def ").replace("|", "\\|")
            elif inspect.isclass(value):
                call = f"class {export}"
            else:
                call = f"{export}: {type(value).__name__}"
            rows.append(f"| `{call}` | {first or 'constant'} |")
        parts.append(
            f"#### `{name}`\n\n{(inspect.getdoc(module) or '').splitlines()[0]}\n\n"
            "| signature | what |\n|---|---|\n" + "\n".join(rows) + "\n"
        )
    return "\n".join(parts)


def _classification_reference() -> str:
    """The classification helpers, read from the source (importing them would import torch)."""
    import ast

    from rnnvision_kit import __file__ as package_file

    path = Path(package_file).with_name("classification.py")
    tree = ast.parse(path.read_text())
    parts = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            header = ast.get_source_segment(path.read_text(), node).split(":\n", 1)[0]
            header = " ".join(header.replace("(\n", "(").split()).replace(", )", ")")
            header = header.replace("( ", "(").replace(" )", ")")
            parts.append(
                f"#### `rnnvision_kit.classification.{node.name}`\n\n```python\n{header}\n```"
                f"\n\n{ast.get_docstring(node) or ''}\n"
            )
    return "\n".join(parts)


# -------------------------------------------------------------------------------- writing


def section_text(section: str) -> str:
    return hook_reference() if section == "hook reference" else contract_reference()


def write_reference(path: Path) -> None:
    """Replace the text between each section's BEGIN and END markers in ``path``."""
    text = path.read_text()
    for section in SECTIONS:
        begin, end = markers(section)
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            raise RnnkitError(f"{path}: markers {begin!r} and {end!r} not found")
        text = f"{text[: start + len(begin)]}\n\n{section_text(section)}\n{text[stop:]}"
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rnnvision_kit.reference")
    parser.add_argument("--print", choices=SECTIONS, help="print one section")
    parser.add_argument("--write", type=Path, metavar="FILE", help="update FILE between markers")
    args = parser.parse_args(argv)
    if args.write:
        write_reference(args.write)
    elif args.print:
        sys.stdout.write(section_text(args.print))
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
