"""The reference sections of ``docs/plugins.md``, generated from the code so that the two agree.

``python -m rnnvision_kit.reference --write docs/plugins.md`` rewrites the sections between the
markers: the table of the public API (from the packages' ``__all__``), the hook reference (from
``rnnvision_kit.hookspecs``) and the contract reference (Task methods, the capabilities'
Protocols, context records, data specs and item formats, settings, the video-source contract,
public helpers, errors). A test
checks that the file is up to date.
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

SECTIONS = ("public api", "hook reference", "contract reference")


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
        stars = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(param.kind.name, "")
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
    call = protocol.__call__
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


def _comments(cls: type) -> dict[str, str]:
    """Field name -> its comment in the source: the comment after it on its line, else the
    comment lines right above it. A subclass's comment wins over its base's."""
    comments: dict[str, str] = {}
    for base in reversed(cls.__mro__[:-1]):
        if not dataclasses.is_dataclass(base):
            continue
        above: list[str] = []
        for line in inspect.getsource(base).splitlines():
            comment = re.match(r"^\s+#\s*(.*)$", line)
            field = re.match(r"^\s+(\w+): [^#\n]*?(?:#\s*(.*))?$", line)
            if comment:
                above.append(comment.group(1))
            elif field:
                text = field.group(2) or " ".join(above)
                if text:
                    comments[field.group(1)] = text
                above = []
            else:
                above = []
    return comments


def _fields(cls: type) -> list[tuple[str, str, str]]:
    """``(name, type, comment)`` of a dataclass's fields, comments from the source lines."""
    comments = _comments(cls)
    return [(f.name, str(f.type), comments.get(f.name, "")) for f in dataclasses.fields(cls)]


def _default(f: dataclasses.Field) -> str:
    """A field's default as Python writes it (``MISSING`` when it has none)."""
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return "MISSING"


def _methods(cls: type, names: Sequence[str]) -> str:
    parts = []
    for name in names:
        function = getattr(cls, name)
        parts.append(
            f"```python\n{signature(function, name)}\n```\n\n{inspect.getdoc(function) or ''}\n"
        )
    return "\n".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def record_reference(cls: type, methods: Sequence[str] = (), *, defaults: bool = False) -> str:
    """A record's heading, docstring, a table of its fields (with ``defaults``: and their
    default values, for settings) and its methods."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if defaults:
        header = "| field | type | default | meaning |\n|---|---|---|---|\n"
        rows = [
            f"| `{n}` | `{_cell(t)}` | `{_cell(_default(fields[n]))}` | {_cell(c)} |"
            for n, t, c in _fields(cls)
        ]
    else:
        header = "| field | type | meaning |\n|---|---|---|\n"
        rows = [f"| `{n}` | `{_cell(t)}` | {_cell(c)} |" for n, t, c in _fields(cls)]
    text = f"#### `{cls.__name__}`\n\n{inspect.getdoc(cls) or ''}\n\n"
    text += header + "\n".join(rows) + "\n"
    if methods:
        text += "\n" + _methods(cls, methods)
    return text


def protocol_reference(protocol: type, attributes: Sequence[str], methods: Sequence[str]) -> str:
    """A Protocol's heading, docstring, its attributes (with their comments) and methods."""
    text = f"#### `{protocol.__name__}`\n\n{inspect.getdoc(protocol) or ''}\n\n"
    source = inspect.getsource(protocol)
    hints = protocol.__annotations__
    lines = []
    for name in attributes:
        found = re.search(rf"^\s+#\s*(.*)\n\s+{name}:", source, re.M)
        comment = f"  # {found.group(1)}" if found else ""
        lines.append(f"{name}: {_annotation(hints[name])}{comment}")
    if lines:
        text += "```python\n" + "\n".join(lines) + "\n```\n\n"
    return text + _methods(protocol, methods)


def function_reference(function: Callable[..., Any], qualified: str) -> str:
    return (
        f"#### `{qualified}`\n\n```python\n{signature(function)}\n```\n\n"
        f"{inspect.getdoc(function) or ''}\n"
    )


def contract_reference() -> str:
    """The Task methods, context records, data specs and item formats, public helpers and
    errors, each with its signature or fields and its docstring."""
    import rnnvision_kit as api
    from rnnvision_kit import config, data, dataspec, errors, registry, task, testing

    parts = ["### Task methods\n", inspect.getdoc(task.Task) or "", ""]
    parts.append(
        _methods(task.Task, ["default_config", "build_data", "build_model", "step", "metrics"])
    )
    parts.append(_methods(task.Task, ["update_metrics"]))
    parts.append(_capabilities_reference())
    parts.append("### Context records\n")
    parts.append(record_reference(task.DataContext, ["source", "open_source"]))
    record: type
    for record in (task.ModelContext, task.StepContext):
        parts.append(record_reference(record))
    parts.append(record_reference(task.MetricsContext, ["metric"]))
    for record in (task.PredictContext, task.ReportContext):
        parts.append(record_reference(record))
    for record in (task.StreamContext, task.StreamFrame):
        parts.append(record_reference(record))
    parts.append(record_reference(task.ExportContext))
    parts.append("### What tasks return\n")
    for record in (
        task.DataBundle,
        task.BuiltModel,
        task.Normalisation,
        task.StepOutput,
        task.DataCheck,
        task.Exportable,
    ):
        parts.append(record_reference(record))
    parts.append("### Data specs and item formats\n")
    parts.append((inspect.getdoc(dataspec) or "") + "\n")
    parts.append(record_reference(dataspec.DataSpec))
    for spec in (dataspec.ImageSpec, dataspec.VideoSpec, dataspec.SegmentationSpec):
        parts.append(record_reference(spec))
    parts.append("### Settings\n")
    parts.append(record_reference(config.DataConfig, ["require_path"], defaults=True))
    parts.append(record_reference(config.EvalConfig, defaults=True))
    parts.append(record_reference(config.ModelConfig, defaults=True))
    parts.append(record_reference(data.VideoDataConfig, defaults=True))
    parts.append(function_reference(config.setting, "rnnvision_kit.setting"))
    parts.append(record_reference(config.Rule))
    parts.append(_video_source_reference())
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


def _capabilities_reference() -> str:
    """The optional capabilities: the Protocol of each one's method."""
    from rnnvision_kit import task

    parts = [
        "### Capabilities\n",
        "A task declares what it supports beyond training at registration "
        "(`capabilities=[...]`) and defines the method of each; a Protocol of "
        "`rnnvision_kit.task` gives its signature (the runner calls it through that type).\n",
    ]
    for protocol, method in (
        (task.Predicts, "predict"),
        (task.ChecksData, "check_data"),
        (task.Reports, "report"),
        (task.Streams, "stream"),
        (task.Exports, "export"),
    ):
        parts.append(protocol_reference(protocol, [], [method]))
    return "\n".join(parts)


def _video_source_reference() -> str:
    """The video-source contract: its Protocols, the Listing record and the functions."""
    from rnnvision_kit import data
    from rnnvision_kit.data import contract

    parts = ["### Video sources\n", (inspect.getdoc(contract) or "") + "\n"]
    parts.append(protocol_reference(data.VideoDataset, ["samples"], ["set_epoch"]))
    call = data.ListSamples.__call__
    parts.append(
        f"#### `ListSamples`\n\n{inspect.getdoc(data.ListSamples)}\n\n```python\n"
        f"{signature(call, 'list_samples').replace('(self, ', '(')}\n```\n\n"
        f"{inspect.getdoc(call)}\n"
    )
    parts.append(record_reference(data.Listing, ["all_samples"]))
    parts.append(record_reference(data.ScanReport, ["decode_note"]))
    for function in (data.build_clip_bundle, data.check_video_source, data.listing_of):
        parts.append(function_reference(function, f"rnnvision_kit.data.{function.__name__}"))
    parts.append(
        "#### `rnnvision_kit.data.CLIP_SETTINGS`\n\n"
        "The `data.*` settings `build_clip_bundle` reads (declare them in `reads=`): "
        + ", ".join(f"`{name}`" for name in data.CLIP_SETTINGS)
        + ".\n"
    )
    return "\n".join(parts)


def _record_fields(cls: type) -> str:
    """``(name: type, ...)`` of a dataclass or NamedTuple (a record users read the fields of),
    else ``""`` (settings classes too: their fields have a table of their own)."""
    if cls.__name__.endswith("Config"):
        return ""
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
    elif issubclass(cls, tuple) and hasattr(cls, "_fields"):
        names = list(cls._fields)
    else:
        return ""
    hints = {
        k: v for c in reversed(cls.__mro__) for k, v in getattr(c, "__annotations__", {}).items()
    }

    def text(hint: object) -> str:
        if isinstance(hint, str):
            return hint
        return str(getattr(hint, "__forward_arg__", getattr(hint, "__name__", hint)))

    shown = [f"{n}: {text(hints[n])}" if n in hints else n for n in names]
    return f"({', '.join(shown)})"


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
                call = f"class {export}{_record_fields(value)}".replace("|", "\\|")
            else:
                call = f"{export}: {type(value).__name__}"
            rows.append(f"| `{call}` | {first or 'constant'} |")
        parts.append(
            f"#### `{name}`\n\n{_first_paragraph(module)}\n\n"
            "| signature | what |\n|---|---|\n" + "\n".join(rows) + "\n"
        )
    return "\n".join(parts)


def _first_paragraph(module: Any) -> str:
    return " ".join((inspect.getdoc(module) or "").split("\n\n")[0].split())


# ------------------------------------------------------------------------------- public API

# Where a name of rnnvision_kit is defined -> what the public-API table calls that group.
PUBLIC_GROUPS = {
    "rnnvision_kit.hookspecs": "the hook marker and the register protocols",
    "rnnvision_kit.task": "the Task contract, its context records and what tasks return",
    "rnnvision_kit.dataspec": "the data specs",
    "rnnvision_kit.config": "settings",
    "rnnvision_kit.layers": "sequence heads as settings",
    "rnnvision_kit.registry": "registries",
    "rnnvision_kit.errors": "errors and messages",
    "rnnvision_kit.progress": "progress on long work",
    "rnnvision_kit.baselines": "a trivial baseline a task measures itself",
    "rnnvision_kit.api": "the Python front door (load, fit, evaluate)",
}
PACKAGES = (  # the public packages besides rnnvision_kit (its docstring names them)
    "rnnvision_kit.data",
    "rnnvision_kit.nn",
    "rnnvision_kit.classification",
    "rnnvision_kit.runner",
    "rnnvision_kit.testing",
)
LISTED = ("rnnvision_kit.data", "rnnvision_kit.nn", "rnnvision_kit.runner")  # _package_reference


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def public_api() -> str:
    """The table of public packages: every name ``rnnvision_kit`` exports, grouped by the
    module that defines it, and for each other package its docstring's first paragraph and
    its names (for the packages the contract reference lists, a link to that list)."""
    import importlib

    import rnnvision_kit

    modules = {name: importlib.import_module(name) for name in PUBLIC_GROUPS}
    groups: dict[str, list[str]] = {}
    for name in rnnvision_kit.__all__:
        if name == "__version__":
            continue
        value = getattr(rnnvision_kit, name)
        homes = [m for m, module in modules.items() if getattr(module, name, None) is value]
        if not homes:
            raise RnnkitError(
                f"rnnvision_kit.{name}: add the module it comes from to PUBLIC_GROUPS"
            )
        # the module that defines it, else the first that holds it
        home = value.__module__ if getattr(value, "__module__", "") in homes else homes[0]
        groups.setdefault(PUBLIC_GROUPS[home], []).append(name)
    what = "; ".join(f"{g}: {_names(groups[g])}" for g in PUBLIC_GROUPS.values() if g in groups)
    rows = [f"| `rnnvision_kit` | {what} |"]
    for package in PACKAGES:
        module = importlib.import_module(package)
        if package in LISTED:
            anchor = package.replace(".", "")
            names = f"Every name, with its signature: [below](#{anchor})."
        else:
            functions = [
                n
                for n, v in vars(module).items()
                if inspect.isfunction(v) and v.__module__ == package and not n.startswith("_")
            ]
            names = f"Names: {_names(functions)}."
        rows.append(f"| `{package}` | {_first_paragraph(module)} {names} |")
    return "| package | what |\n| --- | --- |\n" + "\n".join(rows) + "\n"


def _classification_reference() -> str:
    """The classification helpers, read from the source (importing them would import torch)."""
    import ast

    from rnnvision_kit import __file__ as package_file

    path = Path(package_file).with_name("classification.py")
    tree = ast.parse(path.read_text())
    parts = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            header = (ast.get_source_segment(path.read_text(), node) or "").split(":\n", 1)[0]
            header = " ".join(header.replace("(\n", "(").split()).replace(", )", ")")
            header = header.replace("( ", "(").replace(" )", ")")
            parts.append(
                f"#### `rnnvision_kit.classification.{node.name}`\n\n```python\n{header}\n```"
                f"\n\n{ast.get_docstring(node) or ''}\n"
            )
    return "\n".join(parts)


# -------------------------------------------------------------------------------- writing


def section_text(section: str) -> str:
    """The generated text of one of ``SECTIONS``."""
    texts = {
        "public api": public_api,
        "hook reference": hook_reference,
        "contract reference": contract_reference,
    }
    return texts[section]()


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
