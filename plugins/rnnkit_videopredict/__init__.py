"""Built-in task plugin ``video-predict``: recurrent next-frame prediction (ConvLSTM, ConvGRU,
PredRNN, a parallel convolutional minGRU, copy-last) on Moving MNIST."""
