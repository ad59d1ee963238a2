"""embedlab: fine-tuning experiments on the input layers (token embeddings, positions) of language models."""

__version__ = "0.1.0"
