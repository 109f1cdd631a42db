"""Built-in task plugin ``seg-refine``: an smp segmenter per frame, refined by a ConvGRU across frames."""
