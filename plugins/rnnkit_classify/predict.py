"""``rnnkit predict`` for image-classify: top-k labels per image file."""

from __future__ import annotations

from typing import Any

from rnnkit_classify.data import load_image
from rnnvision_kit import PredictContext
from rnnvision_kit.classification import top_k


def predict_images(ctx: PredictContext) -> list[dict[str, Any]]:
    """One record per file: ``{"file", "top": [{"label", "score"}, ...]}``."""
    spec = ctx.spec
    records = []
    for file in ctx.files:
        image = load_image(file, spec.channels, spec.size)
        logits = ctx.model((image.float() / 255.0).unsqueeze(0).to(ctx.device))[0]
        records.append({"file": str(file), "top": top_k(logits, spec.class_names, ctx.top_k)})
    return records
