"""ClipAugment: one draw for the whole clip, masks follow frames, [0, 1] kept, seeded."""

from __future__ import annotations

import pytest
import torch

from rnnvision_kit.data import ClipAugment, clip_generator


def _clip(t: int = 4, h: int = 24, w: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip whose frames are all the same picture, and a mask that is a function of it."""
    g = torch.Generator().manual_seed(0)
    picture = torch.rand(3, h, w, generator=g)
    frames = picture.expand(t, 3, h, w).clone()
    # The mask is the argmax channel: any geometric transform must keep it the argmax.
    masks = picture.argmax(0).expand(t, h, w).clone()
    return frames, masks


def test_inactive_augment_returns_input() -> None:
    frames, masks = _clip()
    augment = ClipAugment()
    assert not augment.active
    out, out_masks = augment(frames, clip_generator(0, 0, 0), masks)
    assert out is frames and out_masks is masks


def test_same_draw_for_every_frame_and_range_kept() -> None:
    frames, _ = _clip()
    augment = ClipAugment(crop_scale=(0.2, 0.6), hflip=True, jitter=0.5)
    for index in range(8):
        out, _ = augment(frames, clip_generator(3, 1, index))
        assert out.shape == frames.shape and out.dtype == frames.dtype
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert not torch.equal(out[0], frames[0])
        for t in range(1, out.shape[0]):  # identical input frames stay identical
            assert torch.equal(out[t], out[0])


def test_masks_follow_frames_geometry() -> None:
    frames, masks = _clip()
    # Geometry only (no jitter): nearest-resampled masks match the frames' content.
    augment = ClipAugment(crop_scale=(0.3, 0.5), hflip=True)
    for index in range(10):
        out, out_masks = augment(frames, clip_generator(1, 0, index), masks)
        assert out_masks is not None
        assert out_masks.shape == masks.shape and out_masks.dtype == masks.dtype
        assert set(out_masks.unique().tolist()) <= set(masks.unique().tolist())
        for t in range(1, out_masks.shape[0]):
            assert torch.equal(out_masks[t], out_masks[0])
        # Same crop and flip as the frames: the mask agrees with the frames' argmax almost
        # everywhere (bilinear frames and nearest masks differ only along class edges).
        agree = (out[0].argmax(0) == out_masks[0]).float().mean()
        assert agree > 0.6, agree
    # A flip only: the mask is exactly the flipped mask whenever the frames were flipped.
    flip_only = ClipAugment(hflip=True)
    seen = set()
    for index in range(10):
        out, out_masks = flip_only(frames, clip_generator(1, 0, index), masks)
        assert out_masks is not None
        is_flipped = torch.equal(out, frames.flip(-1))
        assert is_flipped or torch.equal(out, frames)
        assert torch.equal(out_masks, masks.flip(-1) if is_flipped else masks)
        seen.add(is_flipped)
    assert seen == {True, False}


def test_deterministic_per_seed_epoch_index() -> None:
    frames, masks = _clip()
    augment = ClipAugment(crop_scale=(0.3, 1.0), hflip=True, jitter=0.4)
    a, am = augment(frames, clip_generator(7, 2, 5), masks)
    b, bm = augment(frames, clip_generator(7, 2, 5), masks)
    assert torch.equal(a, b) and am is not None and bm is not None and torch.equal(am, bm)
    others = [augment(frames, clip_generator(*key))[0] for key in ((8, 2, 5), (7, 3, 5), (7, 2, 6))]
    assert all(not torch.equal(a, other) for other in others)


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="crop_scale"):
        ClipAugment(crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="crop_scale"):
        ClipAugment(crop_scale=(0.8, 0.5))
    with pytest.raises(ValueError, match="jitter"):
        ClipAugment(jitter=-0.1)
    with pytest.raises(ValueError, match="size"):
        ClipAugment(size=(0, 8))


def test_crops_keep_the_output_aspect_ratio() -> None:
    """``ratio`` is relative to the output's aspect: crops of a wide frame are wide too, so they
    are not stretched when resized (torchvision's absolute 3/4..4/3 would stretch every one)."""
    wide = ClipAugment(crop_scale=(0.1, 0.5))
    squeezed = ClipAugment(crop_scale=(0.1, 0.5), size=(48, 96))  # output 2:1 from a 3:4 frame
    for index in range(50):
        top, left, h, w = wide.crop_box(90, 240, clip_generator(0, 0, index))
        assert 0.75 - 0.05 <= (w / h) / (240 / 90) <= 4 / 3 + 0.05
        assert 0 <= top <= 90 - h and 0 <= left <= 240 - w
        top, left, h, w = squeezed.crop_box(120, 90, clip_generator(0, 0, index))
        assert 0.75 - 0.05 <= (w / h) / 2.0 <= 4 / 3 + 0.05 or (w, h) == (90, 45)


def test_crops_resized_to_a_training_size_with_masks() -> None:
    """``size`` trains on crops of large frames: frames and masks both come out ``size``; a
    crop at native scale (area fraction = size area / frame area) is an exact sub-window."""
    frames, masks = _clip(t=2, h=40, w=64)
    crop = ClipAugment(crop_scale=(0.25, 0.25), ratio=(1.0, 1.0), size=(20, 32))
    assert crop.active and "size=[20, 32]" in repr(crop)
    for index in range(5):
        out, out_masks = crop(frames, clip_generator(2, 0, index), masks)
        assert out.shape == (2, 3, 20, 32) and out_masks is not None
        assert out_masks.shape == (2, 20, 32)
        top, left, h, w = crop.crop_box(40, 64, clip_generator(2, 0, index))
        assert (h, w) == (20, 32)
        assert torch.allclose(out, frames[:, :, top : top + h, left : left + w], atol=1e-6)
        assert torch.equal(out_masks, masks[:, top : top + h, left : left + w])
    # No crop drawn (crop_scale [1, 1]): the whole frame, resized to size.
    whole = ClipAugment(size=(20, 32))
    out, out_masks = whole(frames, clip_generator(0, 0, 0), masks)
    assert out.shape == (2, 3, 20, 32) and out_masks is not None
    assert torch.equal(out_masks, masks[:, ::2, ::2])
