"""Reusable recurrent blocks: sequence heads, ConvGRU/ConvLSTM, frame encoders. Imports nothing else from the core."""
