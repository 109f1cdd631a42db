"""Packages whose public names are imported on first use (PEP 562), so that importing the
package stays cheap (no torch) until a name that needs it is looked up."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__``: ``where`` maps each public name to the module
    that defines it; a name is imported on its first lookup and kept in ``namespace`` (the
    package's ``globals()``), so later lookups skip ``__getattr__``.

    Usage, in a package's ``__init__.py``: ``__getattr__, __dir__ = lazy_exports(globals(),
    {"Name": "package.module"})``."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
