"""Pretrained weights by name: the libraries' own caches, fetching a file once, one-line errors.

torchvision weights (and timm's ``url`` weights) live in torch's hub cache,
``$TORCH_HOME/hub/checkpoints``; Hugging Face Hub files (timm, smp) in the HF cache,
``$HF_HUB_CACHE`` or ``$HF_HOME/hub``. A file already there is used without the network.
``RNNKIT_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) turns downloads off. A file that is not cached
and cannot be downloaded is a one-line ``ConfigError`` naming the file and the folder to put it
in; weights of other shapes are one line naming the first parameter that does not fit.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from rnnvision_kit.errors import ConfigError

OFFLINE_ENV = ("RNNKIT_OFFLINE", "HF_HUB_OFFLINE")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SIZE_MISMATCH = re.compile(
    r"size mismatch for ([^:]+): copying a param with shape torch\.Size\(\[([^\]]*)\]\) from "
    r"checkpoint, the shape in current model is torch\.Size\(\[([^\]]*)\]\)"
)


@dataclass(frozen=True)
class WeightsInfo:
    """What pretrained weights say about their input: normalisation and size."""

    name: str  # e.g. "tv:resnet18 IMAGENET1K_V1", "timm:resnet18.a1_in1k"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int] | None = None  # (H, W) the weights were trained/evaluated at
    min_size: tuple[int, int] | None = None  # smallest (H, W) the model accepts
    fixed_size: bool = False  # the model takes input_size only (some ViTs)
    file: str = ""  # where the weights were read from


def downloads_off() -> bool:
    """True when ``RNNKIT_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in OFFLINE_ENV
    )


def torch_hub_dir() -> Path:
    """Where torch keeps downloaded weight files: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_cache_dir() -> Path:
    """The Hugging Face Hub cache, read from the environment now (as huggingface_hub does at
    import): ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    default_home = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(os.environ.get("HF_HOME") or default_home).expanduser() / "hub"


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:160]


def _off() -> str:
    names = [n for n in OFFLINE_ENV if os.environ.get(n)]
    return f"downloads are off ({names[0]})" if names else "downloads are off"


def cached_url(url: str, what: str) -> Path:
    """The file of ``url`` in torch's hub cache, downloaded there first when missing."""
    folder = torch_hub_dir()
    file = folder / Path(urlparse(url).path).name
    if file.is_file():
        return file
    hint = f"put {file.name} into {folder}"
    if downloads_off():
        raise ConfigError(f"{what}: {file.name} ({url}) is not in the cache and {_off()}; {hint}")
    match = torch.hub.HASH_REGEX.search(file.name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(
            url, str(file), hash_prefix=match.group(1) if match else None, progress=_progress()
        )
    except Exception as error:  # URLError, HTTPError, timeouts, a bad hash, a full disk
        file.unlink(missing_ok=True)
        raise ConfigError(f"{what}: cannot download {url} ({_reason(error)}); {hint}") from None
    return file


def cached_hub_file(
    repo_id: str,
    filename: str,
    what: str,
    *,
    revision: str | None = None,
    alternatives: Sequence[str] = (),
) -> Path:
    """``filename`` (or the first of ``alternatives`` the repository has) of a Hugging Face Hub
    repository, from the HF cache, downloaded there first when missing."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    cache = hf_cache_dir()
    names = (filename, *alternatives)
    for name in names:
        try:
            return Path(
                hf_hub_download(
                    repo_id, name, revision=revision, cache_dir=cache, local_files_only=True
                )
            )
        except (LocalEntryNotFoundError, FileNotFoundError):
            continue
    repo_folder = cache / f"models--{repo_id.replace('/', '--')}"
    if revision and _COMMIT.match(revision):
        hint = f"put {filename} into {repo_folder / 'snapshots' / revision}"
    else:
        ref = repo_folder / "refs" / (revision or "main")
        hint = f"put {filename} into {repo_folder / 'snapshots' / 'COMMIT'} and the name COMMIT into {ref}"
    if downloads_off():
        raise ConfigError(
            f"{what}: {repo_id}/{filename} is not in the Hugging Face cache and {_off()}; {hint}"
        )
    reason = ""
    with _quiet_hub():
        for name in names:
            try:
                return Path(hf_hub_download(repo_id, name, revision=revision, cache_dir=cache))
            except LocalEntryNotFoundError:
                reason = "the Hub cannot be reached"
            except EntryNotFoundError as error:  # the repository has no such file: try the next
                reason = _reason(error)
                continue
            except Exception as error:  # no such repository, HTTP errors, a full disk
                reason = _reason(error)
            break
    raise ConfigError(
        f"{what}: cannot download {repo_id}/{filename} from the Hugging Face Hub ({reason}); {hint}"
    )


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """huggingface_hub's retry notices off (its errors become one line here)."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _progress() -> bool:
    return sys.stderr.isatty()


def first_mismatch(error: BaseException) -> str:
    """The first problem of a ``load_state_dict`` RuntimeError as one phrase: ``conv1.weight has
    shape (32, 3, 7, 7) in the file, (64, 3, 7, 7) in the model`` (shape problems first)."""
    text = str(error)
    found = _SIZE_MISMATCH.search(text)
    if found:
        key, theirs, ours = found.groups()
        count = len(_SIZE_MISMATCH.findall(text))
        return (
            f"{key} has shape ({theirs}) in the file, ({ours}) in the model ({count} mismatch(es))"
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if "key(s)" in line), lines[-1] if lines else "")
    return detail[:160]


def shape_problem(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str | None:
    """``key has shape (a) in the file, (b) in the model (N mismatch(es))`` for the first key of
    ``own`` whose shape in ``state`` differs, or None."""
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if not wrong:
        return None
    key = wrong[0]
    return (
        f"{key} has shape {tuple(state[key].shape)} in the file, {tuple(own[key].shape)} in the "
        f"model ({len(wrong)} mismatch(es))"
    )


def input_normalisation(
    encoder: object,
    data_mean: Sequence[float],
    data_std: Sequence[float],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """Mean and std to normalise an encoder's input with, and where they came from: the ones
    set (``model.mean``/``model.std``), else the encoder's pretrained weights'
    (``encoder.weights_info``), else the data's."""
    info: WeightsInfo | None = getattr(encoder, "weights_info", None)
    if mean is not None and std is not None:
        return tuple(mean), tuple(std), "model.mean/std"
    if info is not None and info.mean and info.std:
        return (
            tuple(mean) if mean is not None else info.mean,
            tuple(std) if std is not None else info.std,
            info.name,
        )
    return (
        tuple(mean) if mean is not None else tuple(data_mean),
        tuple(std) if std is not None else tuple(data_std),
        "data",
    )


def check_input_size(encoder: object, height: int, width: int, setting: str = "data.size") -> None:
    """A one-line ConfigError when pretrained weights' model cannot take ``height x width``
    input: a fixed input size (some ViTs) or a minimum size."""
    info: WeightsInfo | None = getattr(encoder, "weights_info", None)
    if info is None:
        return
    if info.fixed_size and info.input_size and (height, width) != tuple(info.input_size):
        h, w = info.input_size
        raise ConfigError(f"{setting}: {info.name} takes {h}x{w} input only (got {height}x{width})")
    if info.min_size and (height < info.min_size[0] or width < info.min_size[1]):
        h, w = info.min_size
        raise ConfigError(
            f"{setting}: {info.name} needs input of at least {h}x{w} (got {height}x{width})"
        )
