"""Frame encoders: shapes, torchvision models with weights=None, weights from a local file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from rnnvision_kit import ConfigError
from rnnvision_kit.nn.encoders import build_encoder, mobilenet_v3_small, resnet18, small_cnn


@pytest.mark.parametrize("size", [32, 64])
def test_small_cnn_gives_feature_dim_vectors(size: int) -> None:
    encoder = small_cnn(feature_dim=48)
    out = encoder(torch.rand(5, 3, size, size))
    assert out.shape == (5, 48) and encoder.out_features == 48


@pytest.mark.parametrize(("name", "native"), [("resnet18", 512), ("mobilenet_v3_small", 576)])
def test_torchvision_encoders_build_without_weights(name: str, native: int) -> None:
    encoder = build_encoder(name).eval()
    assert encoder.out_features == native
    assert encoder(torch.rand(2, 3, 64, 64)).shape == (2, native)
    projected = build_encoder(name, feature_dim=40).eval()
    assert projected(torch.rand(2, 3, 64, 64)).shape == (2, 40)


def _first_conv(module: torch.nn.Module) -> torch.Tensor:
    return next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d)).weight


@pytest.mark.parametrize(
    ("build", "reference"),
    [
        (resnet18, torchvision.models.resnet18),
        (mobilenet_v3_small, torchvision.models.mobilenet_v3_small),
    ],
)
def test_weights_load_from_a_local_file(build, reference, tmp_path: Path) -> None:
    torch.manual_seed(7)
    source = reference(weights=None)  # full model, classifier included, as torchvision saves it
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    fresh = build()
    assert not torch.equal(_first_conv(fresh), _first_conv(source))
    loaded = build(weights=str(path))
    assert torch.equal(_first_conv(loaded), _first_conv(source))
    wrapped = tmp_path / "wrapped.pth"  # {"state_dict": ...} with DataParallel's "module." prefix
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, wrapped)
    assert torch.equal(_first_conv(build(weights=str(wrapped))), _first_conv(source))


def test_small_cnn_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    encoder = small_cnn()
    torch.save(encoder.state_dict(), tmp_path / "w.pt")
    again = small_cnn(weights=str(tmp_path / "w.pt"))
    for a, b in zip(encoder.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_bad_weights_files_give_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match=r"nope\.pth: backbone weights file not found"):
        resnet18(weights=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ConfigError, match=r"garbage\.pth: not a PyTorch weights file") as error:
        resnet18(weights=str(garbage))
    assert "\n" not in str(error.value)
    foreign = tmp_path / "small.pth"
    torch.save(small_cnn().state_dict(), foreign)
    with pytest.raises(ConfigError, match=r"small\.pth: not resnet18 weights \(\d+ missing"):
        resnet18(weights=str(foreign))
    other_shapes = tmp_path / "wide.pth"
    torch.save(small_cnn(feature_dim=64).state_dict(), other_shapes)
    with pytest.raises(ConfigError, match=r"wide\.pth: small-cnn weights of other shapes"):
        small_cnn(feature_dim=128, weights=str(other_shapes))
    with pytest.raises(ConfigError, match="unknown frame encoder 'vgg'"):
        build_encoder("vgg")


def test_the_core_registers_the_encoders_as_backbones() -> None:
    """The core registers the frame encoders once; the video plugin builds on them."""
    from rnnkit_video import plugin

    from rnnvision_kit.testing import plugin_host

    host = plugin_host(video=plugin)
    backbones = host.registries.backbones
    assert {"small-cnn", "resnet18", "mobilenet_v3_small"} <= set(backbones.names())
    assert {e.plugin for e in backbones} == {"core"}
    encoder = backbones.create("small-cnn", feature_dim=16, weights=None)
    assert encoder(torch.rand(1, 3, 32, 32)).shape == (1, 16)
