from __future__ import annotations

import pytest

from rnnvision_kit.errors import RegistryError
from rnnvision_kit.registry import Registry


def make() -> Registry:
    registry = Registry("heads")
    registry.add("gru", lambda **kw: ("a-gru", kw), "alpha")
    registry.add("gru", lambda **kw: ("b-gru", kw), "beta")
    registry.add("lstm", lambda **kw: ("lstm", kw), "alpha", description="an LSTM")
    return registry


def test_unique_bare_names_resolve() -> None:
    entry = make().get("lstm")
    assert (entry.plugin, entry.description, entry.qualified_name) == (
        "alpha",
        "an LSTM",
        "alpha:lstm",
    )


def test_ambiguous_bare_name_lists_qualified_choices() -> None:
    with pytest.raises(RegistryError, match="several plugins; use one of: alpha:gru, beta:gru"):
        make().get("gru")
    assert make().get("beta:gru").factory()[0] == "b-gru"
    assert make().names() == ["alpha:gru", "beta:gru", "lstm"]


def test_unknown_name_lists_known_and_closest() -> None:
    with pytest.raises(
        RegistryError, match=r"unknown head 'lstn' \(known: .*lstm\); did you mean 'lstm'\?"
    ):
        make().get("lstn")


def test_registering_twice_in_one_plugin_is_an_error() -> None:
    registry = make()
    with pytest.raises(RegistryError, match="plugin 'alpha' registered heads 'lstm' twice"):
        registry.add("lstm", lambda: None, "alpha")


def test_create_drops_none_options_and_remove_plugin() -> None:
    registry = make()
    assert registry.create("lstm", hidden=None, layers=2) == ("lstm", {"layers": 2})
    registry.remove_plugin("beta")
    assert registry.get("gru").plugin == "alpha"
    assert "beta:gru" not in registry


def test_lazy_imports_the_target_only_when_called(tmp_path, monkeypatch) -> None:
    import sys

    from rnnvision_kit.registry import lazy

    (tmp_path / "lazy_target_mod.py").write_text(
        "def make(*args, **kwargs):\n    return args, kwargs\n\nclass Box:\n    make = make\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = lazy("lazy_target_mod:Box.make", "bound-name")
    assert "lazy_target_mod" not in sys.modules
    assert factory.__name__ == "make_bound_name"
    assert factory(1, k=2) == (("bound-name", 1), {"k": 2})
    assert "lazy_target_mod" in sys.modules
    with pytest.raises(ValueError, match="expected 'package.module:attribute'"):
        lazy("no_colon_here")


def test_a_factory_that_raises_is_one_line_naming_the_entry_and_plugin() -> None:
    from rnnvision_kit.errors import DataError, PluginError

    registry = Registry("backbones")

    def broken(**options: object) -> None:
        raise KeyError("conv9")

    def refuses(**options: object) -> None:
        raise DataError("weights.pt: not a state dict")

    registry.add("broken", broken, "mine")
    registry.add("refuses", refuses, "mine")
    with pytest.raises(PluginError) as caught:
        registry.create("broken", feature_dim=None)
    assert str(caught.value) == "backbone 'mine:broken' (plugin 'mine') failed: KeyError: 'conv9'"
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(DataError, match="^weights.pt: not a state dict$"):  # user errors pass
        registry.create("refuses")
