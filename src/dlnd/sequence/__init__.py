"""Recurrent and other models on sequences: language models that read and write text, word
embeddings, sentence classifiers, a chatbot, and an RNN that predicts a time series.

- :mod:`dlnd.sequence.language_model`: the LSTM language model, its loss and its sampling;
- :mod:`dlnd.sequence.corpus`: the corpora, the held-out tail, ordered windows;
- :mod:`dlnd.sequence.language_task`: training it with the shared loop, state carried
  across batches (truncated backpropagation through time);
- :mod:`dlnd.sequence.sampling`: writing text from a prime or from a run directory;
- :mod:`dlnd.sequence.series`: the ``sine-wave`` recipe's data, model and plots;
- :mod:`dlnd.sequence.recipes`: ``char-rnn``, ``tv-script``, ``sine-wave``;
- :mod:`dlnd.sequence.word2vec`: skip-gram with negative sampling (``word2vec``);
- :mod:`dlnd.sequence.dialogue`: (line, reply) pairs cut from a script;
- :mod:`dlnd.sequence.seq2seq`: the GRU encoder-decoder with Luong attention;
- :mod:`dlnd.sequence.chatbot`: training it with the shared loop beside two baselines, and
  replying (:mod:`dlnd.sequence.chat_command` is ``dlnd chat``);
- :mod:`dlnd.sequence.text_recipes`: ``sentiment-rnn``, ``sentiment-cnn``, ``word2vec`` and
  ``chatbot``.
"""
