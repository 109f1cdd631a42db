"""A layer's ``train_scale``: the training it needs relative to a task's defaults, applied to
the settings the user left alone (``rnnkit run``, ``rnnkit sweep`` and the Python path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnvision_kit.errors import RegistryError
from rnnvision_kit.plugins import build_host
from rnnvision_kit.registry import Registry
from rnnvision_kit.runconfig import configured


@pytest.fixture(scope="module")
def registries():  # type: ignore[no-untyped-def]
    return build_host().registries


def settings(registries, *sets: str, **options):  # type: ignore[no-untyped-def]
    notes: list[str] = []
    config, _ = configured(registries, "video-action", {"overrides": sets, **options}, notes)
    return config.train.lr, config.train.epochs, notes


def test_a_layer_without_a_scale_keeps_the_task_defaults(registries) -> None:  # type: ignore[no-untyped-def]
    assert settings(registries, "model.head=gru") == (3e-3, 12, [])


def test_the_transformer_trains_longer_at_a_lower_rate(registries) -> None:  # type: ignore[no-untyped-def]
    lr, epochs, notes = settings(registries, "model.head=transformer")
    assert (lr, epochs) == (pytest.approx(1e-3), 24)
    assert notes == [
        "train.lr=0.001 (transformer: x0.333 of 0.003)",
        "train.epochs=24 (transformer: x2 of 12)",
    ]


def test_what_the_user_sets_is_never_scaled(registries, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert settings(registries, "model.head=transformer", "train.lr=0.01")[:2] == (0.01, 24)
    assert settings(registries, "model.head=transformer", epochs=5)[:2] == (
        pytest.approx(1e-3),
        5,
    )
    preset = tmp_path / "preset.yaml"
    preset.write_text("train:\n  epochs: 3\n  lr: 0.02\n")
    assert settings(registries, "model.head=tcn", config_file=str(preset))[:2] == (0.02, 3)


def test_a_bad_train_scale_is_a_registration_error() -> None:
    registry = Registry("layers")
    with pytest.raises(RegistryError, match="train_scale must map lr and/or epochs"):
        registry.add("x", lambda *a: None, "p", train_scale={"momentum": 2.0})
    with pytest.raises(RegistryError, match="train_scale must map lr and/or epochs"):
        registry.add("y", lambda *a: None, "p", train_scale={"lr": 0})


def test_rnnkit_layers_shows_each_scale(rnnkit) -> None:  # type: ignore[no-untyped-def]
    result = rnnkit("layers", check=True)
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert "lr x0.333, epochs x2" in rows["transformer"]
    assert "epochs x2" in rows["s5"] and "lr x0.333" in rows["tcn"]
