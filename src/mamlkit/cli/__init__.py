"""The command line (``mamlkit train|eval``); one module per command."""
