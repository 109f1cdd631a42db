"""Fuzzing the run configuration: ``--set KEY=VALUE`` overrides, ``--config`` YAML files and
``--data`` for every built-in task, through the real parsing path
(:func:`~rnnvision_kit.runner.pipeline.configure`, then :func:`~rnnvision_kit.config.validate`)
and a few through the real CLI. Every case ends in a valid config (which survives the round
trip through a run folder's ``config.yaml``) or an ``RnnkitError`` of one line naming the
setting or the file; never another exception."""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rnnvision_kit.config import apply_mapping, load_yaml, save_yaml, validate
from rnnvision_kit.errors import RnnkitError
from rnnvision_kit.plugins import build_host
from rnnvision_kit.runner.pipeline import TaskHandle, configure, open_task
from tests.fuzzing import BUDGETS, assert_one_line, budget

TASKS = ("image-classify", "video-action", "seg-refine")

# YAML and config corner cases, used as raw --set values and as strings in files.
NASTY = [
    *("", " ", "none", "null", "~", "yes", "off", "true", "0", "-1", "1e400", "-0", "0x1f"),
    *("0o17", "0b101", "1_000", ".nan", "-.inf", "+.inf", "[1,", "{a", "[", "{", "]", "}"),
    *("'", '"', "'unclosed", "[1, [2, [3]]]", "{a: {b: {c: d}}}", "[[], {}]", "{0:0}"),
    *("!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system", "*x"),
    *("&a [*a]", "&a {b: *a}", "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "?x"),
    *("!!timestamp 2001-12-14", "2020-01-01", "12:30:00", "!!float nan", "!!int x", "|", ">"),
    *("a: b", "- x", "%YAML 1.1", "---", "...", "? x", "@x", "`x", "#", "a # b", "\t", "\x00"),
    *("\x85", "\u2028", "\ufeff", "\x1b[31mred", "ü日本🙂", "a\nb", "[a]: b", "{[1]: 2}"),
    *("[" * 3000, "{a: " * 600, "[" * 300 + "]" * 300, "1" * 5000, "9" * 400, "-" + "9" * 400),
    *("1.0e+400", "-1.0e+400", str(2**63), str(2**64), "1e-400", "4.9e-324", "x" * 3000),
]
BIG_INTS = [0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63), 10**30, -(10**30), 10**400]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BIG_INTS),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(NASTY),
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none())
    return st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)


values = st.recursive(scalars, containers, max_leaves=12)


@functools.cache
def registries() -> Any:
    return build_host().registries


@functools.cache
def handle(task: str) -> TaskHandle:
    return open_task(registries(), task)


@functools.cache
def known_keys(task: str) -> tuple[str, ...]:
    """Every dotted key of the task's default config: settings and groups (data, model, ...)."""
    out: list[str] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            out.append(f"{prefix}{f.name}")
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")

    walk(handle(task).default_config(), "")
    return tuple(out)


def mutated(key: str) -> st.SearchStrategy[str]:
    forms = [
        key[:-1],
        key + "x",
        key.upper(),
        "." + key,
        key + ".",
        key.replace(".", ".."),
        key + ".sub",
        " " + key + " ",
        key.replace("_", "-"),
        key + "ü",
    ]
    return st.sampled_from(forms)


def keys(task: str) -> st.SearchStrategy[str]:
    known = st.sampled_from(known_keys(task))
    return st.one_of(known, known, known, known.flatmap(mutated), st.text(max_size=12))


def flow_yaml(value: Any) -> str:
    """``value`` as one line of YAML, as a user would type it after ``--set KEY=``."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()


def raw_values() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(NASTY), st.text(max_size=30), values.map(flow_yaml))


def overrides(task: str) -> st.SearchStrategy[str]:
    pair = st.tuples(keys(task), raw_values()).map(lambda kv: f"{kv[0]}={kv[1]}")
    return st.one_of(pair, pair, pair, st.text(max_size=20))


def nested_mapping(task: str) -> st.SearchStrategy[dict[Any, Any]]:
    """A settings mapping as a YAML file holds it: groups of real keys, plus garbage."""
    leaf = st.tuples(keys(task), values)

    def nest(items: list[tuple[str, Any]]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, value in items:
            *groups, last = key.split(".") if key else [key]
            target = out
            for group in groups:
                target = target.setdefault(group, {})
                if not isinstance(target, dict):
                    break
            else:
                target[last] = value
        return out

    return st.lists(leaf, max_size=5).map(nest)


def yaml_texts(task: str) -> st.SearchStrategy[bytes]:
    """Contents of a --config file: mappings, other documents, invalid YAML, random bytes."""
    dump = functools.partial(yaml.safe_dump, allow_unicode=True, sort_keys=False)
    texts = st.one_of(
        nested_mapping(task).map(dump),
        nested_mapping(task).map(lambda m: dump({"task": "video-action", **m})),
        values.map(dump),  # a list or a scalar at the top
        st.sampled_from(NASTY),
        st.text(max_size=60),
        st.sampled_from(
            [
                "",
                "train: [unclosed\n",
                "train:\n  lr: 1\n lr: 2\n",  # bad indentation
                "train: {lr: 1}\ntrain: {lr: 2}\n",  # a duplicate key
                "a: &a [1]\nb: *a\nc: *nope\n",
                "x: &x {y: *x}\n",
                "model: &m {segmenter_options: *m}\n",
                "model:\n  segmenter_options:\n    a: &a [x, x, x, x, x, x]\n"
                "    b: &b [*a, *a, *a, *a, *a, *a]\n    c: &c [*b, *b, *b, *b, *b, *b]\n"
                "    d: [*c, *c, *c, *c, *c, *c]\n",  # aliases sharing a node (billion laughs)
                "---\ntrain: {}\n---\nseed: 1\n",
                "\ufefftrain:\n  lr: 0.1\n",
                "train:\n\tlr: 0.1\n",
            ]
        ),
    )
    as_bytes = texts.map(lambda text: text.encode("utf-8", "surrogatepass"))
    return st.one_of(
        as_bytes,
        as_bytes,
        texts.map(lambda text: text.encode("utf-16")),
        st.binary(max_size=64),
    )


_SCRATCH: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def _scratch_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    _SCRATCH[:] = [tmp_path_factory.mktemp("fuzz-config")]


def scratch() -> Path:
    """The folder the cases of this module write their files in (pytest's, kept 3 runs)."""
    return _SCRATCH[0]


def names_in(mapping: Any) -> list[str]:
    """The top-level keys of a mapping: an error about a setting in it names one of them."""
    return [str(key) for key in mapping] if isinstance(mapping, dict) else []


def outcome(
    task: str,
    *,
    sets: list[str] = (),  # type: ignore[assignment]
    config_file: Path | None = None,
    data: str | None = None,
    names: list[str] = (),  # type: ignore[assignment]
) -> RnnkitError | None:
    """Configure and validate as a command does; a valid config must come back unchanged from
    its ``config.yaml`` (as ``eval``, ``predict`` and ``--resume`` read it)."""
    try:
        config = configure(
            handle(task),
            config_file=str(config_file) if config_file else None,
            data=data,
            overrides=sets,
            registries=registries(),
        )
        validate(config)
    except RnnkitError as error:
        setting_names = [text.partition("=")[0].strip() for text in sets]
        assert_one_line(error, *sets, *setting_names, *names, *([data] if data else []))
        return error
    saved = scratch() / "config.yaml"
    save_yaml(config, saved)
    again = handle(task).default_config()
    apply_mapping(again, {k: v for k, v in load_yaml(saved).items() if k != "task"})
    validate(again)
    assert same(again.to_dict(), config.to_dict())
    return None


def same(a: Any, b: Any) -> bool:
    """Equal values, NaN equal to NaN (1 == 1.0: a float setting whose default is an int)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("name", BUDGETS)
def test_set_overrides(name: str) -> None:
    @budget(name, 150)
    @given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), overrides(t))))
    def check(case: tuple[str, str]) -> None:
        task, text = case
        outcome(task, sets=[text])

    check()


@pytest.mark.parametrize("name", BUDGETS)
def test_several_overrides_and_data(name: str) -> None:
    def cases(task: str) -> st.SearchStrategy[Any]:
        sets = st.lists(overrides(task), min_size=2, max_size=5)
        data = st.none() | st.text(max_size=20) | st.sampled_from(["digits", ":", "a:b:c", "::"])
        return st.tuples(st.just(task), sets, data)

    @budget(name, 50)
    @given(st.sampled_from(TASKS).flatmap(cases))
    def check(case: tuple[str, list[str], str | None]) -> None:
        task, sets, data = case
        outcome(task, sets=sets, data=data)

    check()


@pytest.mark.parametrize("name", BUDGETS)
def test_config_files(name: str) -> None:
    def cases(task: str) -> st.SearchStrategy[Any]:
        return st.tuples(st.just(task), yaml_texts(task), st.lists(overrides(task), max_size=2))

    @budget(name, 100)
    @given(st.sampled_from(TASKS).flatmap(cases))
    def check(case: tuple[str, bytes, list[str]]) -> None:
        task, content, sets = case
        path = scratch() / "settings.yaml"
        path.write_bytes(content)
        try:
            mapping = yaml.safe_load(content)
        except Exception:
            mapping = None
        outcome(task, sets=sets, config_file=path, names=[str(path), *names_in(mapping)])

    check()


# What fuzzing found: each raised a traceback (or passed as valid and failed later).
FOUND = [
    ("image-classify", "seed=" + "1" * 400, "seed: must be in [0, 18446744073709551616)"),
    ("video-action", "model.mean=[1,", "model.mean: '[1,' is not a list like [a, b]"),
    ("seg-refine", "data.size=[1,", "data.size: '[1,' is not a list like [a, b]"),
    ("video-action", "model.mean=" + "[" * 3000, "model.mean: '[[[["),
    ("video-action", "train.lr=" + "[" * 3000, "train.lr: expected a number, got '[[[["),
    ("video-action", "train.lr=.nan", "train.lr: is not a number (got nan)"),
    ("video-action", "train.lr=!!int x", "train.lr: expected a number, got '!!int x'"),
    ("seg-refine", "seed=" + "9" * 5000, "seed: expected an integer, got '9999"),
    ("video-action", "task=seg-refine", "--set 'task=seg-refine': the task is not a"),
    ("seg-refine", "model.segmenter_options=&a {b: *a}", "model.segmenter_options: a value that"),
    ("image-classify", "train.threads=1000000", "train.threads: must be in [1, 1024]"),
    (
        "image-classify",
        "model.backbone_weights=w.pt",
        "model.backbone_weights: needs model.encoder",
    ),
    ("seg-refine", "data.num_classes=10000000000", "data.num_classes: must be in [2, 65536]"),
    ("seg-refine", "data.mask_values={0: 0, 1: 99999999999}", "data.mask_values: stored values"),
]


@pytest.mark.parametrize(
    ("task", "text", "message"), FOUND, ids=[f"{t}:{x[:24]}" for t, x, _ in FOUND]
)
def test_what_fuzzing_found(task: str, text: str, message: str) -> None:
    error = outcome(task, sets=[text])
    assert error is not None and str(error).startswith(message), error


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"seed: \x80\x81", "invalid YAML"),  # not UTF-8: was a UnicodeDecodeError
        ("seed: 1\n".encode("utf-16"), None),  # UTF-16 with its BOM reads
        (b"seed: " + b"1" * 5000, "invalid YAML (a number too long or nesting too deep)"),
        (b"a: " + b"[" * 3000, "invalid YAML"),
    ],
    ids=["not-utf-8", "utf-16", "long-int", "deep"],
)
def test_config_file_encodings_and_limits(content: bytes, message: str | None) -> None:
    path = scratch() / "found.yaml"
    path.write_bytes(content)
    error = outcome("video-action", config_file=path)
    assert (error is None) if message is None else (message in str(error)), error


def test_config_paths_that_are_not_files(tmp_path: Path) -> None:
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    for path in (folder, tmp_path / "missing.yaml"):
        error = outcome("video-action", config_file=path)
        assert error is not None and str(path) in str(error)


# A few through the real CLI: `check-data` parses and validates the config, then scans tiny data
# (pinned after the fuzzed settings) without training. image-classify has no check-data: its
# valid configs end in "does not support check-data".
CLI_PINS = {
    "image-classify": [],
    "video-action": ["data.videos_per_class=[2]", "data.size=16", "data.source=moving-digits"],
    "seg-refine": [
        "data.videos=2",
        "data.clip_len=2",
        "data.size=null",
        "data.source=synthetic-seg",
    ],
}


def cli_keys(task: str) -> st.SearchStrategy[str]:
    runner = [k for k in known_keys(task) if k.split(".")[0] in ("train", "model", "eval", "seed")]
    known = st.sampled_from(runner)
    return st.one_of(known, known, known.flatmap(mutated))


def cli_cases(task: str) -> st.SearchStrategy[Any]:
    pair = st.tuples(cli_keys(task), raw_values()).map(lambda kv: f"{kv[0]}={kv[1]}")
    mapping = st.lists(st.tuples(cli_keys(task), values), max_size=3).map(
        lambda items: {"train": {k.partition(".")[2]: v for k, v in items if "." in k}}
    )
    text = st.none() | mapping.map(yaml.safe_dump) | st.sampled_from(NASTY[:40])
    return st.tuples(st.just(task), st.lists(pair | st.text(max_size=10), max_size=3), text)


@pytest.mark.parametrize("name", BUDGETS)
def test_cli_check_data(name: str, rnnkit: Any, one_thread: None) -> None:
    @budget(name, 12, deadline_s=60, fixtures=True)
    @given(st.sampled_from(TASKS).flatmap(cli_cases))
    def check(case: tuple[str, list[str], str | None]) -> None:
        task, sets, text = case
        args = ["check-data", "--task", task]
        if text is not None:
            path = scratch() / "cli.yaml"
            path.write_text(text, encoding="utf-8")
            args += ["--config", str(path)]
        for item in [*sets, *CLI_PINS[task]]:
            args += ["--set", item]
        result = rnnkit(*args)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode in (0, 1, 2), (result.returncode, result.stderr)
        if result.returncode == 2:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            errors = [line for line in lines if not line.startswith("rnnkit: warning: ")]
            assert len(errors) == 1 and errors[0].startswith("rnnkit: error: "), result.stderr

    check()
