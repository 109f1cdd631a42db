"""Fine-tuning controls: frozen stages stay unchanged through a training step, frozen BatchNorm
statistics survive model.train(), learning-rate groups reach the runner's optimizer, and the
video-action settings work end to end (with model.init_from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnvision_kit import ConfigError, TrainConfig
from rnnvision_kit.nn import freeze_batchnorm, freeze_encoder, lr_groups
from rnnvision_kit.nn.families import timm_encoder, torchvision_encoder
from rnnvision_kit.runner import load_checkpoint
from rnnvision_kit.runner.optim import build_optimizer, build_scheduler
from tests.conftest import CliRunner


def _clip_model(encoder: nn.Module, pretrained_lr: float = 1.0) -> nn.Module:
    from rnnkit_video.model import ClipClassifier

    from rnnvision_kit.nn import build_head

    head = build_head("gru", encoder.out_features, 4, hidden_size=8)
    return ClipClassifier(encoder, head, [0.5] * 3, [0.25] * 3, pretrained_lr=pretrained_lr)


def _train_step(model: nn.Module, lr: float = 0.1) -> None:
    model.train()
    optimizer = build_optimizer(model, TrainConfig(optimizer="sgd", lr=lr))
    logits = model(torch.rand(2, 3, 3, 32, 32))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    optimizer.step()


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_frozen_stages_are_unchanged_after_a_training_step() -> None:
    torch.manual_seed(0)
    encoder = torchvision_encoder("resnet18", feature_dim=16)
    frozen = freeze_encoder(encoder, 2)  # stem and layer1
    assert frozen == sum(
        p.numel() for m in (*encoder.stages()[0], *encoder.stages()[1]) for p in m.parameters()
    )
    model = _clip_model(encoder)
    before = _snapshot(encoder.trunk)
    _train_step(model)
    after = encoder.trunk.state_dict()
    for key in before:
        changed = not torch.equal(before[key], after[key])
        if key.startswith(("conv1.", "bn1.", "layer1.")):  # parameters and BN statistics
            assert not changed, key
    assert not torch.equal(before["layer3.0.conv1.weight"], after["layer3.0.conv1.weight"])
    assert not torch.equal(before["layer3.0.bn1.running_mean"], after["layer3.0.bn1.running_mean"])


def test_freeze_all_keeps_the_projection_trainable_and_counts_are_checked() -> None:
    encoder = timm_encoder("resnet10t", feature_dim=8)
    freeze_encoder(encoder, "all")
    assert not any(p.requires_grad for p in encoder.trunk.parameters())
    assert all(p.requires_grad for p in encoder.project.parameters())
    with pytest.raises(ConfigError, match=r"model.freeze=9: backbone tv:resnet18 has 5 stage"):
        freeze_encoder(torchvision_encoder("resnet18"), 9)


def test_frozen_batchnorm_statistics_survive_train_mode() -> None:
    torch.manual_seed(1)
    encoder = torchvision_encoder("mobilenet_v3_small", feature_dim=8)
    layers = freeze_batchnorm(encoder)
    assert layers > 10
    model = _clip_model(encoder)
    stats = {k: v.clone() for k, v in encoder.state_dict().items() if "running" in k}
    bias = encoder.trunk.features[0][1].bias.clone()
    model.train()  # what the runner calls at every epoch start
    _train_step(model)
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in stats.items())
    assert not torch.equal(bias, encoder.trunk.features[0][1].bias)  # affine still trains


def test_lr_groups_reach_the_optimizer_and_keep_their_ratio_under_the_schedule() -> None:
    encoder = torchvision_encoder("resnet18", feature_dim=16)
    freeze_encoder(encoder, 1)
    model = _clip_model(encoder, pretrained_lr=0.1)
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, epochs=2, schedule="cosine")
    optimizer = build_optimizer(model, cfg)
    slow, rest = optimizer.param_groups
    assert (slow["lr"], rest["lr"]) == pytest.approx((1e-4, 1e-3))
    trunk = {id(p) for p in encoder.trunk.parameters() if p.requires_grad}
    assert {id(p) for p in slow["params"]} == trunk
    assert all(id(p) not in trunk for p in rest["params"])
    assert not any(
        id(p) == id(encoder.trunk.conv1.weight) for g in optimizer.param_groups for p in g["params"]
    )
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=4)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert slow["lr"] / rest["lr"] == pytest.approx(0.1)
    # pretrained_lr 1: one group, as before
    assert len(build_optimizer(_clip_model(torchvision_encoder("resnet18")), cfg).param_groups) == 1


def test_lr_groups_of_any_model() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    net[1].bias.requires_grad_(False)
    groups = lr_groups(net, [net[0]], 0.5)
    assert [len(g["params"]) for g in groups] == [2, 1] and groups[0]["lr_mult"] == 0.5


def test_video_fine_tuning_settings_end_to_end(rnnkit: CliRunner, tmp_path: Path) -> None:
    """A run, then a run from it (model.init_from) with the encoder frozen whole: its trunk,
    BatchNorm statistics included, comes out exactly as the first run left it."""
    base = [
        "run", "--task", "video-action", "--set", "data.videos_per_class=[4]",
        "--epochs", "1", "--set", "train.max_steps_per_epoch=2", "--quiet", "--json",
    ]  # fmt: skip
    first = rnnkit(*base)
    assert first.returncode == 0, first.stderr
    first_dir = tmp_path / json.loads(first.stdout)["run_dir"]
    second = rnnkit(
        *base, "--set", f"model.init_from={first_dir}", "--set", "model.freeze=all",
        "--set", "model.freeze_bn=true", "--set", "model.pretrained_lr=0.1",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "model.init_from" not in second.stderr  # same model: everything copied, no warning
    second_dir = tmp_path / json.loads(second.stdout)["run_dir"]
    a = load_checkpoint(first_dir / "best.pt")["model"]
    b = load_checkpoint(second_dir / "last.pt")["model"]
    trunk = [k for k in a if k.startswith("encoder.features.")]
    assert trunk and all(torch.equal(a[k], b[k]) for k in trunk)
    assert not torch.equal(a["head.classifier.weight"], b["head.classifier.weight"])


@pytest.mark.parametrize("backbone", ["tv:resnet18", "timm:resnet10t"])
def test_video_action_runs_with_family_backbones(
    backbone: str, rnnkit: CliRunner, tmp_path: Path
) -> None:
    result = rnnkit(
        "run", "--task", "video-action", "--set", "data.videos_per_class=[4]",
        "--set", f"model.backbone={backbone}", "--set", "data.size=32", "--epochs", "1",
        "--set", "train.max_steps_per_epoch=2", "--set", "model.freeze=1", "--quiet", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 1 and 0.0 <= summary["test"]["test/acc"] <= 1.0


def test_image_classify_reads_an_encoders_feature_map(rnnkit: CliRunner) -> None:
    result = rnnkit(
        "run", "--task", "image-classify", "--set", "model.encoder=tv:resnet18",
        "--set", "data.image_size=32", "--set", "model.freeze=2", "--set", "model.freeze_bn=true",
        "--epochs", "1", "--set", "train.max_steps_per_epoch=2", "--quiet", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bad = rnnkit("run", "--task", "image-classify", "--set", "model.weights=DEFAULT")
    assert "model.weights: needs model.encoder=<a backbone>" in bad.stderr
