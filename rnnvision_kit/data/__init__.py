"""Data layer: video I/O on PyAV, clip samplers, folder data sets, generators. Imports nothing else from the core."""
