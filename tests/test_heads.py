"""Heads built from the layer registry: every layer streams as its head's forward, settings are
checked per layer in one line, old fused-RNN checkpoints still load, plugins register layers."""

from __future__ import annotations

import pytest
import torch
from layer_checks import one_thread  # noqa: F401
from torch import nn

from rnnvision_kit import ConfigError, HeadConfig, RegistryError, build_sequence_head
from rnnvision_kit.layers import layer_settings
from rnnvision_kit.nn import SequenceHead, build_head
from rnnvision_kit.plugins import build_host
from rnnvision_kit.registry import Registry


@pytest.fixture(scope="module")
def registries():
    return build_host().registries


def streaming_layers(registries) -> list[str]:
    return [e.name for e in registries.layers if e.plugin == "core" and e.meta.get("causal")]


def test_every_core_layer_is_registered_with_its_settings(registries) -> None:
    names = set(registries.layers.names())
    assert {"gru", "lstm", "rnn", "mingru", "minlstm", "lru", "s5"} <= names
    assert "mean" in registries.heads.names()
    assert layer_settings(registries, HeadConfig(head="lru")).r_max == 0.99


@pytest.mark.parametrize("num_layers", [1, 2])
def test_each_layer_head_steps_as_its_forward(registries, num_layers: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 9, 6)
    for name in streaming_layers(registries):
        config = HeadConfig(head=name, hidden_size=8, num_layers=num_layers)
        head = build_sequence_head(registries, config, 6, 3).eval()
        assert isinstance(head, SequenceHead) and head.stream_blocker is None, name
        with torch.no_grad():
            chunk, _ = head.scan(x)
            state = head.initial_state(2)
            for t in range(9):
                logits, state = head.step(x[:, t], state)
                torch.testing.assert_close(logits, head(x[:, : t + 1]), atol=2e-5, rtol=1e-4)
                torch.testing.assert_close(chunk[:, t], logits, atol=2e-5, rtol=1e-4)
        shapes = [(2, *spec.shape) for spec in head.state_spec()]
        assert [tuple(s.shape) for s in state] == shapes, name


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"bidirectional": True}, "model.bidirectional=false"),
        ({"pooling": "mean"}, "model.pooling=last"),
    ],
)
def test_a_head_that_needs_the_whole_clip_says_which_setting(
    registries, options: dict, words: str
) -> None:
    head = build_sequence_head(
        registries, HeadConfig(head="mingru", hidden_size=4, **options), 3, 2
    )
    assert words in head.stream_blocker and head(torch.randn(2, 5, 3)).shape == (2, 2)
    with pytest.raises(ValueError, match="cannot stream"):
        head.scan(torch.randn(2, 5, 3))


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_checkpoints_of_the_fused_head_load_into_the_stack(cell: type, bidirectional: bool) -> None:
    torch.manual_seed(0)
    fused = cell(5, 4, num_layers=2, batch_first=True, bidirectional=bidirectional)
    classifier = nn.Linear(8 if bidirectional else 4, 3)
    old = {f"rnn.{k}": v for k, v in fused.state_dict().items()}
    old |= {f"classifier.{k}": v for k, v in classifier.state_dict().items()}
    name = "gru" if cell is nn.GRU else "lstm"
    head = build_head(name, 5, 3, hidden_size=4, num_layers=2, bidirectional=bidirectional)
    head.load_state_dict(old)
    x = torch.randn(2, 6, 5)
    _, state = fused(x)
    hidden = state[0] if isinstance(state, tuple) else state
    directions = 2 if bidirectional else 1
    expected = classifier(hidden[-directions:].transpose(0, 1).reshape(2, -1))
    torch.testing.assert_close(head(x), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    ("head", "layer", "message"),
    [
        ("mingu", {}, "model.head: unknown layer or head 'mingu' .*did you mean 'mingru'"),
        (
            "lru",
            {"stat_size": 4},
            "model.layer.stat_size: layer 'lru' has no setting 'stat_size' .*state_size",
        ),
        ("gru", {"expansion": 2}, "layer 'gru' has no setting 'expansion' \\(it has no settings"),
        ("lru", {"r_min": 0.995}, "model.layer.r_min: must be below model.layer.r_max"),
        ("s5", {"state_size": 7}, "model.layer.state_size: must be even"),
        ("mingru", {"expansion": "wide"}, "model.layer.expansion: expected a number"),
        ("mean", {"x": 1}, "model.layer.x: model.head=mean is a whole head"),
    ],
)
def test_bad_head_settings_are_one_line(registries, head: str, layer: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        layer_settings(registries, HeadConfig(head=head, layer=layer))
    assert "\n" not in str(error.value)


def test_layer_settings_reach_the_layer(registries) -> None:
    config = HeadConfig(head="mingru", hidden_size=8, layer={"expansion": 1.5})
    head = build_sequence_head(registries, config, 4, 2)
    assert head.layers[0].layer.inner_size == 12


def test_set_reaches_the_free_layer_mapping() -> None:
    from rnnvision_kit.config import RunConfig, apply_overrides

    config = RunConfig(task="t", model=HeadConfig())
    apply_overrides(config, ["model.layer.state_size=16", "model.layer.init=lin"])
    assert config.model.layer == {"state_size": 16, "init": "lin"}


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"block": "stacked"}, "block must be plain, residual, glu or own"),
        ({"settings": dict}, "settings must be a dataclass"),
        ({"causal": "yes"}, "causal must be true or false"),
    ],
)
def test_a_badly_registered_layer_is_refused(meta: dict, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        Registry("layers").add("bad", lambda i, h: None, "plug", **meta)


@pytest.mark.parametrize("name", ["mingru", "lru", "s5", "mamba"])
def test_a_long_sequence_traces_in_pieces_at_any_batch(registries, name: str) -> None:
    """Traced on 150 steps (export of a 784-pixel image model, say), a layer runs its
    loop-free export scan in pieces of 64 steps: the graph equals eager mode at other batch
    sizes, with O(T * 64) memory instead of O(T^2)."""
    import warnings

    from rnnvision_kit.nn import create_layer

    torch.manual_seed(0)
    layer = create_layer(name, 6, 8).eval()
    x = torch.randn(3, 150, 6)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(layer, (x[:2],), check_trace=False)
        torch.testing.assert_close(traced(x), layer(x), atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(traced(x[:1]), layer(x[:1]), atol=2e-5, rtol=1e-4)


def test_the_core_registers_each_layer_with_the_block_nn_builds_it_with() -> None:
    """``rnnvision_kit.layers.CORE_LAYERS`` (torch-free, for the registry) and
    ``rnnvision_kit.nn.builtin_layer`` (for ``build_head``) name the same blocks."""
    from rnnvision_kit.layers import CORE_LAYERS
    from rnnvision_kit.nn import builtin_layer

    for name, (_, _, block, _) in CORE_LAYERS.items():
        assert builtin_layer(name)[1] == block, name
