"""The command line (``mamlkit train|eval|adapt|data``); one module per command."""
