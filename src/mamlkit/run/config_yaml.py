"""Reading a config's YAML strictly: a key given twice or nesting deeper than any config
goes is an error, not the last value or a RecursionError.

PyYAML's ``safe_load`` keeps the last of two equal keys without a word, and composes
nested collections recursively, so 20,000 ``[`` overflow Python's stack.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from mamlkit.run.schema import ConfigError, short_repr

MAX_YAML_DEPTH = 32
"""The deepest nesting of collections a config's YAML may have; mamlkit's own go four deep
(``algorithm: {maml_pp: {msl: ...}}`` with a list value)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


def parse_config_yaml(text: str, where: str) -> Any:
    """The data of the YAML ``text``, as ``yaml.safe_load`` reads it but strict.

    Args:
        text: one YAML document.
        where: how to name the text in an error, e.g. "config 'run.yaml'".

    Returns:
        Plain data: dicts, lists, scalars.

    Raises:
        ConfigError: a mapping holds a key twice (naming the key and both lines), or
            collections nest more than ``MAX_YAML_DEPTH`` deep (naming the line).
        yaml.YAMLError: the text is not YAML.

    Example:
        >>> parse_config_yaml("train: {iterations: 5}", "example")
        {'train': {'iterations': 5}}
    """
    loader = _StrictLoader(text)
    loader.where = where
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing duplicate keys and deep nesting (see ``parse_config_yaml``)."""

    where = "the YAML"
    depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            return super().compose_node(parent, index)  # a scalar or an alias: no deeper
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise ConfigError(f"{self.where} nests more than {MAX_YAML_DEPTH} levels deep (line {line}); "
                                  "a config needs four at most")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:  # before merging ``<<: *base``, whose keys may be overridden
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            if key in first_lines:
                raise ConfigError(f"{self.where} gives the key {short_repr(key)} twice in one mapping (lines "
                                  f"{first_lines[key]} and {line}); keep one")
            first_lines[key] = line
        return super().construct_mapping(node, deep=deep)
