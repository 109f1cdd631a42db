"""Built-in task plugin ``image-classify``: an image read as a sequence of rows by an RNN/GRU/LSTM."""
