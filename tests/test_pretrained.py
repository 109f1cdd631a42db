"""Pretrained weights by name, offline: files placed where the libraries' caches keep them
(TORCH_HOME, the Hugging Face cache) are loaded without the network; a missing one is one line
naming the file and the folder; unknown names give the closest; other shapes name the first
parameter; normalisation comes from the weights; model.init_from across class counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from rnnvision_kit import CheckpointError, ConfigError
from rnnvision_kit.nn.families import timm_encoder, torchvision_encoder
from rnnvision_kit.nn.pretrained import input_normalisation
from tests.conftest import CliRunner

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty torch and Hugging Face caches in tmp_path, downloads off."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("RNNKIT_OFFLINE", "1")
    return {"torch": tmp_path / "torch" / "hub" / "checkpoints", "hf": tmp_path / "hf" / "hub"}


def _tv_file(caches: dict[str, Path], name: str, tag: str = "DEFAULT") -> Path:
    weights = torchvision.models.get_model_weights(name)[tag]
    return caches["torch"] / Path(weights.url).name


def _first_conv(module: torch.nn.Module) -> torch.Tensor:
    return next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d)).weight


def _place_tv(caches: dict[str, Path], name: str, seed: int = 5) -> torch.nn.Module:
    torch.manual_seed(seed)
    source = torchvision.models.get_model(name, weights=None)
    file = _tv_file(caches, name)
    file.parent.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), file)
    return source


def _hf_snapshot(caches: dict[str, Path], repo: str, commit: str, ref: str | None) -> Path:
    folder = caches["hf"] / f"models--{repo.replace('/', '--')}"
    (folder / "snapshots" / commit).mkdir(parents=True)
    if ref:
        (folder / "refs").mkdir()
        (folder / "refs" / ref).write_text(commit)
    return folder / "snapshots" / commit


# ---------------------------------------------------------------------------- torchvision


def test_torchvision_weights_from_the_cache_without_the_network(caches: dict[str, Path]) -> None:
    source = _place_tv(caches, "resnet18")
    encoder = torchvision_encoder("resnet18", pretrained="DEFAULT")
    assert torch.equal(_first_conv(encoder), _first_conv(source))
    info = encoder.weights_info
    assert info.name == "tv:resnet18 IMAGENET1K_V1" and info.input_size == (224, 224)
    assert info.mean == pytest.approx((0.485, 0.456, 0.406))
    assert info.file == str(_tv_file(caches, "resnet18"))
    # the registered resnet18 reads the same file, by the tag's own name
    from rnnvision_kit.nn.encoders import resnet18

    builtin = resnet18(pretrained="IMAGENET1K_V1")
    assert torch.equal(_first_conv(builtin), _first_conv(source))
    assert list(builtin.state_dict()) == list(encoder.state_dict())


def test_torchvision_weights_offline_and_not_cached_is_one_line(caches: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as error:
        torchvision_encoder("mobilenet_v3_small", pretrained="DEFAULT")
    message = str(error.value)
    expected = _tv_file(caches, "mobilenet_v3_small")
    assert "\n" not in message
    assert f"put {expected.name} into {expected.parent}" in message
    assert message.startswith("model.weights=DEFAULT of tv:mobilenet_v3_small:")
    assert "downloads are off (RNNKIT_OFFLINE)" in message


def test_torchvision_unknown_tag_and_other_shapes(caches: dict[str, Path]) -> None:
    with pytest.raises(
        ConfigError,
        match=r"tv:resnet50 has no such weights \(known: "
        r"IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT\); closest: IMAGENET1K_V2",
    ):
        torchvision_encoder("resnet50", pretrained="IMAGENET1K_V3")
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["layer2.0.conv1.weight"] = torch.zeros(128, 32, 3, 3)
    file = _tv_file(caches, "resnet18")
    file.parent.mkdir(parents=True)
    torch.save(state, file)
    with pytest.raises(ConfigError) as error:
        torchvision_encoder("resnet18", pretrained="DEFAULT")
    assert str(error.value) == (
        f"{file}: weights do not fit tv:resnet18: layer2.0.conv1.weight has shape "
        "(128, 32, 3, 3) in the file, (128, 64, 3, 3) in the model (1 mismatch(es))"
    )


def test_inception_weights_keep_the_architecture_and_normalise_at_one_half(
    caches: dict[str, Path],
) -> None:
    """transform_input is off with and without weights (same module either way); the weights'
    normalisation says what it did."""
    file = _tv_file(caches, "googlenet")
    file.parent.mkdir(parents=True)
    torch.save(
        torchvision.models.googlenet(
            weights=None, aux_logits=True, init_weights=False
        ).state_dict(),
        file,
    )
    encoder = torchvision_encoder("googlenet", pretrained="DEFAULT")
    assert encoder.trunk.transform_input is False and encoder.trunk.aux1 is None
    assert encoder.weights_info.mean == (0.5, 0.5, 0.5)
    assert list(encoder.state_dict()) == list(torchvision_encoder("googlenet").state_dict())
    encoder.train()(torch.rand(2, 3, 64, 64))  # no auxiliary outputs in training mode


# ----------------------------------------------------------------------------------- timm


def test_timm_weights_from_the_hugging_face_cache(caches: dict[str, Path]) -> None:
    import timm

    torch.manual_seed(2)
    source = timm.create_model("resnet10t")  # with its classifier, as published
    snapshot = _hf_snapshot(caches, "timm/resnet10t.c3_in1k", COMMIT, "main")
    save_file(source.state_dict(), str(snapshot / "model.safetensors"))
    encoder = timm_encoder("resnet10t", pretrained="pretrained")
    assert torch.equal(_first_conv(encoder), _first_conv(source))
    info = encoder.weights_info
    assert info.name == "timm:resnet10t.c3_in1k" and info.input_size == (176, 176)
    assert info.file == str(snapshot / "model.safetensors")
    # the tag named in the setting, or in the model name
    assert timm_encoder("resnet10t", pretrained="c3_in1k").weights_info.name.endswith("c3_in1k")
    assert timm_encoder("resnet10t.c3_in1k", pretrained="pretrained").weights_info is not None


def test_timm_offline_unknown_tag_and_other_shapes(caches: dict[str, Path]) -> None:
    import timm

    with pytest.raises(ConfigError) as error:
        timm_encoder("resnet18", pretrained="pretrained")
    message = str(error.value)
    folder = caches["hf"] / "models--timm--resnet18.a1_in1k"
    assert "\n" not in message and "model.safetensors" in message
    assert f"into {folder / 'snapshots' / 'COMMIT'}" in message and str(folder / "refs") in message
    with pytest.raises(ConfigError, match=r"timm:resnet18 has no weights 'a1_in1' .*closest: "):
        timm_encoder("resnet18", pretrained="a1_in1")
    snapshot = _hf_snapshot(caches, "timm/resnet14t.c3_in1k", COMMIT, "main")
    save_file(timm.create_model("resnet10t").state_dict(), str(snapshot / "model.safetensors"))
    with pytest.raises(ConfigError) as error:  # resnet10t weights for resnet14t: more blocks
        timm_encoder("resnet14t", pretrained="pretrained")
    assert "weights do not fit timm:resnet14t.c3_in1k" in str(error.value)
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------------ smp


def test_smp_encoder_weights_from_the_hugging_face_cache(caches: dict[str, Path]) -> None:
    import segmentation_models_pytorch as smp
    from rnnkit_segrefine.config import SegModelConfig
    from rnnkit_segrefine.model import create_segmenter
    from rnnkit_segrefine.weights import load_encoder_weights

    settings = smp.encoders.encoders["resnet18"]["pretrained_settings"]["imagenet"]
    m = SegModelConfig(encoder_weights="imagenet")
    segmenter = create_segmenter(m, 3)
    with pytest.raises(ConfigError) as error:
        load_encoder_weights(segmenter, m)
    folder = caches["hf"] / "models--smp-hub--resnet18.imagenet" / "snapshots"
    assert str(error.value).endswith(f"put model.safetensors into {folder / settings['revision']}")
    torch.manual_seed(4)
    published = torchvision.models.resnet18(weights=None).state_dict()  # smp's encoder is a ResNet
    snapshot = _hf_snapshot(caches, "smp-hub/resnet18.imagenet", settings["revision"], None)
    save_file(published, str(snapshot / "model.safetensors"))
    assert load_encoder_weights(segmenter, m) == str(snapshot / "model.safetensors")
    assert torch.equal(segmenter.encoder.conv1.weight, published["conv1.weight"])
    with pytest.raises(ConfigError, match=r"smp has no such weights .*closest: imagenet"):
        load_encoder_weights(segmenter, SegModelConfig(encoder_weights="imagenett"))


# -------------------------------------------------------------------------- normalisation


def test_normalisation_from_the_settings_else_the_weights_else_the_data(
    caches: dict[str, Path],
) -> None:
    _place_tv(caches, "resnet18")
    data = ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    pretrained = torchvision_encoder("resnet18", pretrained="DEFAULT")
    assert input_normalisation(pretrained, *data)[2] == "tv:resnet18 IMAGENET1K_V1"
    assert input_normalisation(torchvision_encoder("resnet18"), *data) == (*data, "data")
    mean, std, source = input_normalisation(pretrained, *data, [0.5] * 3, [0.25] * 3)
    assert (mean, std, source) == ((0.5,) * 3, (0.25,) * 3, "model.mean/std")


def test_video_run_with_named_weights_records_the_normalisation(
    caches: dict[str, Path], rnnkit: CliRunner, tmp_path: Path
) -> None:
    _place_tv(caches, "resnet18")
    result = rnnkit(
        "run", "--task", "video-action", "--set", "data.videos_per_class=[4]",
        "--set", "model.backbone=tv:resnet18", "--set", "model.weights=DEFAULT",
        "--set", "data.size=32", "--epochs", "1", "--set", "train.max_steps_per_epoch=1",
        "--quiet", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / json.loads(result.stdout)["run_dir"]
    import yaml

    model = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]
    assert model["mean"] == pytest.approx([0.485, 0.456, 0.406]) and model["weights"] == "DEFAULT"
    eval_result = rnnkit("eval", str(run_dir), "--json")  # rebuilt without reading the weights
    assert eval_result.returncode == 0, eval_result.stderr


def test_bad_weight_names_are_one_line_cli_errors(
    caches: dict[str, Path], rnnkit: CliRunner
) -> None:
    base = ["run", "--task", "video-action", "--set", "data.videos_per_class=[4]", "--epochs", "1"]
    result = rnnkit(*base, "--set", "model.backbone=tv:resnet18", "--set", "model.weights=V9")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rnnkit: error: model.weights=V9: tv:resnet18 has no such weights "
        "(known: IMAGENET1K_V1, DEFAULT)"
    ]
    result = rnnkit(*base, "--set", "model.weights=DEFAULT", "--set", "model.backbone_weights=x")
    assert "model.weights: model.backbone_weights is set too" in result.stderr
    result = rnnkit(*base, "--set", "model.backbone=timm:convnext_nanoo")
    assert "closest: timm:convnext_nano" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------ init_from


def test_init_from_copies_what_fits_and_lists_the_rest(tmp_path: Path) -> None:
    from rnnkit_video.model import ClipClassifier

    from rnnvision_kit.nn import build_encoder, build_head
    from rnnvision_kit.runner.transfer import init_from

    def model(classes: int) -> ClipClassifier:
        head = build_head("gru", 16, classes, hidden_size=8)
        return ClipClassifier(
            build_encoder("small-cnn", feature_dim=16), head, [0.5] * 3, [0.2] * 3
        )

    torch.manual_seed(0)
    source = model(10)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "ten.pt")
    target = model(3)
    line = init_from(target, str(tmp_path / "ten.pt"))
    assert torch.equal(target.encoder.features[0].weight, source.encoder.features[0].weight)
    assert torch.equal(
        target.head.layers[0].layer.rnn.weight_ih_l0, source.head.layers[0].layer.rnn.weight_ih_l0
    )
    assert not torch.equal(target.head.classifier.bias, source.head.classifier.bias[:3])
    total = len(target.state_dict())
    assert line == (
        f"model.init_from: copied {total - 2} of {total} tensors from {tmp_path / 'ten.pt'}; kept "
        "fresh: head.classifier.weight (shape (10, 8) there, (3, 8) here), head.classifier.bias "
        "(shape (10,) there, (3,) here)"
    )
    assert init_from(model(10), str(tmp_path / "ten.pt")) is None  # everything fits
    torch.save({"a": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no tensor fits this model"):
        init_from(target, str(tmp_path / "foreign.pt"))
    with pytest.raises(CheckpointError, match=r"nope: model.init_from not found"):
        init_from(target, str(tmp_path / "nope"))


def test_init_from_a_run_of_another_data_set_with_other_classes(
    rnnkit: CliRunner, tmp_path: Path
) -> None:
    """image-classify trained on digits (10 classes), fine-tuned on a 3-class image folder: the
    row heads are copied, the classifiers skipped with one warning line."""
    import numpy as np
    from PIL import Image

    first = rnnkit(
        "run", "--task", "image-classify", "--epochs", "1",
        "--set", "train.max_steps_per_epoch=2", "--quiet", "--json",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / json.loads(first.stdout)["run_dir"]
    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(8):
            pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / c / f"{i}.png")
    second = rnnkit(
        "run", "--task", "image-classify", "--data", f"imagefolder:{tmp_path / 'imgs'}",
        "--set", "data.image_size=16", "--set", "data.channels=1",
        "--set", f"model.init_from={run_dir}", "--epochs", "1", "--quiet", "--json",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    warnings = [line for line in second.stderr.splitlines() if "model.init_from" in line]
    assert len(warnings) == 1
    assert f"from {run_dir / 'best.pt'}; kept fresh: heads.rows.classifier.weight" in warnings[0]
    assert "(shape (10, 256) there, (3, 256) here)" in warnings[0]
