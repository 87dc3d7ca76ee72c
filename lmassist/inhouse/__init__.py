"""The in-house language models: small PyTorch LMs that users train on their own text.

Everything here stands alone (it can be used from a notebook): tokenizers, the RNN/LSTM/Transformer
models, data preparation, training, evaluation, an n-gram baseline, and int8/pruning optimisation.
From the rest of lmassist only the foundation layer is imported (errors, system, config, textinput).

Importing this package is cheap; torch is imported by the submodules that need it.
"""
