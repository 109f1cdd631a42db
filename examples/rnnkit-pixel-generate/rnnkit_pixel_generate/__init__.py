"""rnnvision-kit plugin: task ``pixel-generate``, 8x8 digits generated row by row by a Row LSTM.

The hook implementations live in ``rnnkit_pixel_generate.plugin`` (the entry point); importing
this package or that module does not import torch.
"""

__version__ = "0.1.0"
