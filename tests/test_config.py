from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from rnnvision_kit.config import (
    DataConfig,
    Rule,
    RunConfig,
    apply_mapping,
    apply_overrides,
    apply_recorded,
    load_yaml,
    parse_data_source,
    setting,
    split_fractions_rule,
    validate,
)
from rnnvision_kit.errors import ConfigError


@dataclass
class ModelConfig:
    head: str = "gru"
    hidden_size: int = 32
    bidirectional: bool = False
    pooling: Literal["last", "mean"] = "last"
    size: tuple[int, int] = (64, 64)


def make() -> RunConfig:
    return RunConfig(task="t", data=DataConfig(source="digits"), model=ModelConfig())


def test_overrides_are_typed() -> None:
    config = make()
    apply_overrides(
        config,
        [
            "train.lr=0.01",
            "model.hidden_size=128",
            "model.bidirectional=true",
            "train.precision=bf16-mixed",
            "model.size=[32, 96]",
            "train.patience=3",
            "train.grad_clip=none",
            "seed=7",
        ],
    )
    assert config.train.lr == 0.01 and config.model.hidden_size == 128
    assert config.model.bidirectional is True and config.train.precision == "bf16-mixed"
    assert config.model.size == (32, 96) and config.train.patience == 3
    assert config.train.grad_clip is None and config.seed == 7


def test_precision_32_read_as_yaml_int_becomes_the_string_choice() -> None:
    config = make()
    apply_overrides(config, ["train.precision=32"])
    assert config.train.precision == "32"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=0.1", "unknown config key 'train.lrr'.*did you mean 'train.lr'"),
        ("modle.head=gru", "unknown config key 'modle.head'.*did you mean 'model.head'"),
        ("train.lr=fast", "train.lr: expected a number, got 'fast'"),
        ("model.hidden_size=1.5", "model.hidden_size: expected an integer"),
        ("model.pooling=max", "model.pooling: 'max' is not one of: last, mean"),
        ("train.optimizer=adamax", "train.optimizer: 'adamax' is not one of"),
        ("model.bidirectional=maybe", "model.bidirectional: expected true or false"),
        ("train.lr", "expected KEY=VALUE"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(make(), [override])


def test_validate_checks_ranges() -> None:
    config = make()
    apply_overrides(config, ["train.epochs=0"])
    with pytest.raises(ConfigError, match="train.epochs: must be >= 1"):
        validate(config)


def test_yaml_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.5\n  epochs: 3\nmodel:\n  head: lstm\n")
    config = make()
    apply_mapping(config, load_yaml(path))
    apply_overrides(config, ["train.lr=0.1"])
    assert (config.train.lr, config.train.epochs, config.model.head) == (0.1, 3, "lstm")


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML at line"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_yaml(listing)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digits", ("digits", None)),
        ("mnist:~/data", ("mnist", "~/data")),
        ("imagefolder:/a/b:c", ("imagefolder", "/a/b:c")),
        ("classify:mnist:/data", ("classify:mnist", "/data")),
    ],
)
def test_parse_data_source(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_data_source(text) == expected


@dataclass
class Declared:
    """Checks declared on fields (``setting``) and across fields (``Rule``)."""

    layers: int = setting(2, ge=1)
    dropout: float = setting(0.1, ge=0, lt=1)
    kernel: int = setting(3, ge=1, odd=True)
    size: list[int] | None = setting(None, ge=8, le=1024, length=(2,))
    frozen: bool = False
    weights: str | None = None

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("frozen", "needs model.weights=PATH", lambda m: not m.frozen or bool(m.weights)),
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.layers=0", "model.layers: must be >= 1 (got 0)"),
        ("model.dropout=1", "model.dropout: must be in [0, 1) (got 1.0)"),
        ("model.kernel=4", "model.kernel: must be odd (got 4)"),
        ("model.size=[4,64]", "model.size: must be in [8, 1024] (got [4, 64])"),
        ("model.size=[64]", "model.size: needs 2 value(s) (got [64])"),
        ("model.frozen=true", "model.frozen: needs model.weights=PATH"),
        ("data.batch_size=0", "data.batch_size: must be >= 1 (got 0)"),
        ("data.source=", "data.source: is empty (got '')"),
        ("train.lr=0", "train.lr: must be > 0 (got 0.0)"),
        ("train.lr=.nan", "train.lr: is not a number (got nan)"),
        ("train.lr=.inf", "train.lr: must be finite (got inf)"),
        ("train.lr=-.inf", "train.lr: must be finite (got -inf)"),
        ("train.grad_clip=.inf", "train.grad_clip: must be finite (got inf)"),
        ("model.dropout=-.inf", "model.dropout: must be finite (got -inf)"),
    ],
)
def test_declared_checks_are_validated_in_one_place(override: str, message: str) -> None:
    config = RunConfig(task="t", data=DataConfig(source="digits"), model=Declared())
    validate(config)
    apply_overrides(config, [override])
    with pytest.raises(ConfigError) as caught:
        validate(config)
    assert str(caught.value) == message


def test_none_passes_declared_checks() -> None:
    config = RunConfig(task="t", data=DataConfig(source="digits"), model=Declared())
    apply_overrides(config, ["model.size=null", "train.patience=null", "model.size=[8, 1024]"])
    validate(config)


def test_a_redeclared_field_keeps_its_base_checks() -> None:
    @dataclass
    class MyData(DataConfig):
        source: str = "mine"
        batch_size: int = 8  # re-declared without setting(): DataConfig's ge=1 still holds

    config = RunConfig(task="t", data=MyData())
    apply_overrides(config, ["data.batch_size=0"])
    with pytest.raises(ConfigError, match=r"^data.batch_size: must be >= 1 \(got 0\)$"):
        validate(config)


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("train.batch_size=8", "data.batch_size"),  # the same setting in another section
        ("train.batchsize=8", "data.batch_size"),  # ... misspelt
        ("data.lr=0.1", "train.lr"),
        ("train.lrr=0.1", "train.lr"),  # a typo within the section
        ("trian.epochs=3", "train.epochs"),  # a misspelt section
        ("model.hiden_size=8", "model.hidden_size"),
        ("sed=1", "seed"),
        ("modle.nothing=1", "model"),  # no such setting in the closest section
    ],
)
def test_did_you_mean_searches_every_section(override: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(make(), [override])
    key = override.partition("=")[0]
    assert str(caught.value).startswith(f"unknown config key {key!r} (known here: ")
    assert str(caught.value).endswith(f"; did you mean {suggestion!r}?")


def test_nothing_close_suggests_nothing() -> None:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(make(), ["train.zzzz=1"])
    assert "did you mean" not in str(caught.value)


@dataclass
class Fractions(DataConfig):
    source: str = "folder"
    val_fraction: float = setting(0.1, ge=0, lt=1)
    test_fraction: float = setting(0.2, ge=0, lt=1)

    rules: ClassVar[tuple[Rule, ...]] = (split_fractions_rule("videos", skip=("fixed",)),)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.val_fraction=0.7", "data.test_fraction=0.5"],
            "data.val_fraction + data.test_fraction: 0.7 + 0.5 = 1.2 leaves no training videos "
            "(must be < 1)",
        ),
        (
            ["data.val_fraction=0.5", "data.test_fraction=0.5"],
            "data.val_fraction + data.test_fraction: 0.5 + 0.5 = 1 leaves no training videos "
            "(must be < 1)",
        ),
        (["data.val_fraction=0.5", "data.test_fraction=0.4"], None),
        (["data.val_fraction=0.7", "data.test_fraction=0.5", "data.source=p:fixed"], None),
    ],
)
def test_fractions_that_leave_nothing_to_train_on_are_a_config_error(
    overrides: list[str], message: str | None
) -> None:
    config = RunConfig(task="t", data=Fractions())
    apply_overrides(config, overrides)
    if message is None:
        validate(config)
        return
    with pytest.raises(ConfigError) as caught:
        validate(config)
    assert str(caught.value) == message


def test_parse_data_source_reads_a_qualified_source_it_knows() -> None:
    known = {"video:videofolder", "videofolder"}
    assert parse_data_source("video:videofolder", known) == ("video:videofolder", None)
    assert parse_data_source("videofolder:clips", known) == ("videofolder", "clips")
    assert parse_data_source("video:videofolder") == ("video", "videofolder")


@dataclass
class _Later:
    width: int = setting(8, ge=1)
    mode: str | None = setting(None, before="old")  # added later; older runs had "old"


@dataclass
class _Outer:
    inner: _Later = field(default_factory=_Later)
    top: int = setting(1, before=0)


def test_a_setting_added_later_takes_its_before_value_in_older_runs() -> None:
    old = _Outer()
    apply_recorded(old, {"inner": {"width": 4}})  # recorded before mode and top existed
    assert (old.inner.width, old.inner.mode, old.top) == (4, "old", 0)
    new = _Outer()
    apply_recorded(new, {"inner": {"width": 4, "mode": None}, "top": 2})  # recorded with them
    assert (new.inner.mode, new.top) == (None, 2)
    fresh = _Outer()
    apply_recorded(fresh, {})  # no section at all: every later setting as before
    assert (fresh.inner.mode, fresh.top) == ("old", 0)
    assert (_Outer().inner.mode, _Outer().top) == (None, 1)  # new runs: the default
