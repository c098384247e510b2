"""YAML presets shipped with mamlkit (``mamlkit train PRESET``)."""
