"""Show-and-Tell captioning as LibrePhotos ships it (`im2txt`), in PyTorch and ONNX Runtime.

Model folder layout (LibrePhotos' `data_models/im2txt`, from its `im2txt.tar.gz`):

    models/encoder-10-1000.ckpt   state dict of EncoderCNN: ResNet-152 trunk + linear + batch norm
    models/decoder-10-1000.ckpt   state dict of DecoderRNN: embedding, LSTM, linear over the vocab
    data/vocab.pkl                pickled `Vocabulary` (word2idx, idx2word, idx)
    onnx/encoder.onnx             written by `capdex models export im2txt`
    onnx/decoder_step.onnx        one LSTM step; the decoding loop runs in numpy
"""
