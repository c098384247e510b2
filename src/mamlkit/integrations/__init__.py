"""Bridges to other libraries' models: ``huggingface`` (transformers and peft, the ``hf`` extra).

Nothing else of mamlkit imports this package; it imports ``algorithms`` and ``core``.
"""
