"""Frame encoders: shapes, feature maps and stages, the tv:/timm: families, weights from a local
file, names the registry resolves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from rnnvision_kit import CheckpointError, ConfigError
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
    with pytest.raises(
        CheckpointError, match=r"garbage\.pth: not a readable PyTorch weights file"
    ) as error:
        resnet18(weights=str(garbage))
    assert "\n" not in str(error.value)
    foreign = tmp_path / "small.pth"
    torch.save(small_cnn().state_dict(), foreign)
    with pytest.raises(ConfigError, match=r"small\.pth: not resnet18 weights \(\d+ missing"):
        resnet18(weights=str(foreign))
    other_shapes = tmp_path / "wide.pth"
    torch.save(small_cnn(feature_dim=64).state_dict(), other_shapes)
    with pytest.raises(
        ConfigError,
        match=r"wide\.pth: small-cnn weights of other shapes: project\.1\.weight has shape "
        r"\(64, 512\) in the file, \(128, 512\) in the model",
    ):
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


# --------------------------------------------------------------------- families, maps, stages


@pytest.mark.parametrize(
    ("name", "native", "channels", "stages"),
    [
        ("tv:resnet18", 512, 512, 5),
        ("tv:mobilenet_v3_small", 1024, 576, 14),
        ("tv:squeezenet1_1", 512, 512, 9),
        ("tv:densenet121", 1024, 1024, 9),
        ("timm:resnet10t", 512, 512, 5),
        ("timm:mobilenetv3_small_050", 1024, 288, 6),
        ("timm:convnext_atto", 320, 320, 5),  # 4 levels + the head norm
    ],
)
def test_family_models_give_features_before_the_classifier(
    name: str, native: int, channels: int, stages: int
) -> None:
    from rnnvision_kit.testing import plugin_host

    backbones = plugin_host().registries.backbones
    encoder = backbones.create(name).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert encoder(images).shape == (2, native) and encoder.out_features == native
        fmap = encoder.feature_map(images)
    assert fmap.dim() == 4 and fmap.shape[:2] == (2, channels)
    assert len(encoder.stages()) == stages
    staged = {id(p) for stage in encoder.stages() for m in stage for p in m.parameters()}
    assert staged == {id(p) for p in encoder.trunk.parameters()}  # the stages cover the trunk
    projected = backbones.create(name, feature_dim=24).eval()
    assert projected(images).shape == (2, 24)


def test_builtin_encoders_have_feature_maps_and_stages() -> None:
    images = torch.rand(2, 3, 64, 64)
    small = small_cnn()
    assert small.feature_map(images).shape == (2, 32, 8, 8) and len(small.stages()) == 3
    net = resnet18().eval()
    assert net.feature_map(images).shape == (2, 512, 2, 2)
    assert [len(s) for s in net.stages()] == [2, 1, 1, 1, 1]  # stem (conv1, bn1), layer1..4
    mobile = mobilenet_v3_small().eval()
    assert mobile.feature_map(images).shape == (2, 576, 2, 2)


def test_feature_map_keeps_gradients_and_token_models_say_they_have_none() -> None:
    from rnnvision_kit.nn.families import timm_encoder, torchvision_encoder

    encoder = torchvision_encoder("resnet18")
    fmap = encoder.feature_map(torch.rand(2, 3, 32, 32))
    fmap.sum().backward()
    assert encoder.trunk.conv1.weight.grad is not None
    assert encoder.trunk.layer4[0].conv1.weight.grad is not None
    vit = timm_encoder("vit_tiny_patch16_224").eval()
    assert vit(torch.rand(1, 3, 224, 224)).shape == (1, 192)
    with pytest.raises(ConfigError, match="tokens, not a B,C,H,W feature map"):
        vit.feature_map(torch.rand(1, 3, 224, 224))


def test_tv_and_timm_builtins_share_state_dict_names() -> None:
    """The registered resnet18 and tv:resnet18 are the same module tree (weights interchange)."""
    from rnnvision_kit.nn.families import torchvision_encoder

    assert list(resnet18().state_dict()) == list(torchvision_encoder("resnet18").state_dict())


def test_family_names_resolve_and_unknown_names_give_the_closest() -> None:
    from rnnvision_kit import RegistryError
    from rnnvision_kit.testing import plugin_host

    backbones = plugin_host().registries.backbones
    assert backbones.get("tv:resnet50").qualified_name == "core:tv:resnet50"
    assert backbones.get("core:timm:resnet10t").name == "timm:resnet10t"
    assert backbones.get("resnet18").plugin == "core"  # registered names keep working
    with pytest.raises(RegistryError, match=r"backbone 'tv' is a family: .*'tv:MODEL'"):
        backbones.create("tv")
    with pytest.raises(RegistryError, match=r"known: .*timm:MODEL, tv:MODEL"):
        backbones.create("resnet50")
    with pytest.raises(ConfigError) as error:
        backbones.create("tv:resnet5")
    assert "torchvision has no model 'resnet5'; closest: tv:resnet50" in str(error.value)
    with pytest.raises(ConfigError, match=r"timm has no model 'resnt18'; closest: timm:resnet18"):
        backbones.create("timm:resnt18")
    assert "\n" not in str(error.value)


def test_family_encoders_load_a_local_file(tmp_path: Path) -> None:
    import timm

    from rnnvision_kit.nn.families import timm_encoder, torchvision_encoder

    torch.manual_seed(3)
    source = torchvision.models.get_model("squeezenet1_1", weights=None)
    torch.save(source.state_dict(), tmp_path / "sq.pth")
    loaded = torchvision_encoder("squeezenet1_1", weights=str(tmp_path / "sq.pth"))
    assert torch.equal(_first_conv(loaded), _first_conv(source))
    net = timm.create_model("resnet10t")  # with its classifier, as timm saves it
    torch.save(net.state_dict(), tmp_path / "r10t.pth")
    loaded = timm_encoder("resnet10t", weights=str(tmp_path / "r10t.pth"))
    assert torch.equal(_first_conv(loaded), _first_conv(net))
    other = timm.create_model("resnet14t")
    torch.save(other.state_dict(), tmp_path / "r14t.pth")
    with pytest.raises(ConfigError, match=r"r14t\.pth: not timm:resnet10t weights"):
        timm_encoder("resnet10t", weights=str(tmp_path / "r14t.pth"))
