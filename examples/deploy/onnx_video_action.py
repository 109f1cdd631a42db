"""Label a video with an exported video-action model: onnxruntime and PyAV only, no rnnvision-kit.

usage: python onnx_video_action.py MODEL.onnx VIDEO   (MODEL.onnx.json, the sidecar, beside it)
Prints "frame seconds label probability" after each frame the model reads.
"""

import json
import sys

import av
import numpy as np
import onnxruntime as ort

model_path, video_path = sys.argv[1], sys.argv[2]
with open(model_path + ".json") as file:
    meta = json.load(file)
height, width = meta["preprocessing"]["frame_size"]
resize = meta["preprocessing"].get("resize", "stretch")  # how training fitted its frames
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
states = {
    s["input"]: np.zeros([1 if d == "batch" else d for d in s["shape"]], s["dtype"])
    for s in meta["states"]
}  # zeros before the first frame
names = [output["name"] for output in meta["outputs"]]
clip = []  # a model that cannot stream ("mode": "clip") runs once on all the frames


def fitted(frame):
    """The frame as training saw it: H,W,3 uint8 at frame_size, fitted by the run's resize."""
    h, w = frame.height, frame.width
    if resize == "stretch" or (h, w) == (height, width):
        return frame.to_ndarray(width=width, height=height, format="rgb24")
    scale = (max if resize == "crop" else min)(height / h, width / w)
    sh, sw = round(h * scale), round(w * scale)
    if resize == "crop":  # the short side fits, then a centre crop
        sh, sw = max(height, sh), max(width, sw)
        top, left = (sh - height) // 2, (sw - width) // 2
        rgb = frame.to_ndarray(width=sw, height=sh, format="rgb24")
        return rgb[top : top + height, left : left + width]
    sh, sw = min(height, max(1, sh)), min(width, max(1, sw))  # pad: the long side fits
    top, left = (height - sh) // 2, (width - sw) // 2
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[top : top + sh, left : left + sw] = frame.to_ndarray(width=sw, height=sh, format="rgb24")
    return canvas


def show(index, seconds, logits):
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    print(f"{index} {seconds:.3f} {meta['class_names'][probs.argmax()]} {probs.max():.6f}")


with av.open(video_path) as container:
    for index, frame in enumerate(container.decode(video=0)):
        if index % meta["stride"]:
            continue  # the model reads every stride-th frame, as it was trained
        x = (fitted(frame).astype(np.float32) / 255).transpose(2, 0, 1)[
            None, None
        ]  # B=1, T=1, 3, H, W
        if meta["mode"] == "clip":
            clip.append(x)
            continue
        outputs = dict(zip(names, session.run(names, {"frames": x, **states}), strict=True))
        states = {s["input"]: outputs[s["output"]] for s in meta["states"]}  # carried on
        show(index, frame.time or 0.0, outputs["logits"][0, -1])
if clip:
    show(index, frame.time or 0.0, session.run(None, {"frames": np.concatenate(clip, 1)})[0][0])
