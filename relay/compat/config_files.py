"""Reading configuration files safely: bounded in size, in YAML alias expansion and in INI interpolation.

A file given to an importer may be hostile or simply wrong: a file of
gigabytes, YAML whose nested aliases expand to billions of values ("billion
laughs"), or INI ``%(name)s`` references that double at every level. Each is
refused with a clear error in well under a second, before it costs memory.
"""
from __future__ import annotations

import configparser
import os
from collections.abc import Hashable
from pathlib import Path

import yaml
from django.conf import settings

from ..core.errors import ConfigError


def read_text(path: str | Path) -> str:
    """The UTF-8 text of the file at ``path``; a file over RELAY_IMPORT_MAX_BYTES is refused before it is read."""
    limit = settings.RELAY_IMPORT_MAX_BYTES
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                raise ConfigError(str(path), _too_large(size, limit))
            data = file.read(limit + 1)  # a pipe or a growing file says nothing true of its size beforehand
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigError(str(path), _too_large(None, limit))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not a text file (UTF-8 expected)") from None


def _too_large(size: int | None, limit: int) -> str:
    told = f"{size:,} bytes" if size is not None else f"over {limit:,} bytes"
    return (f"too large: {told}, the limit is {limit:,} (RELAY_IMPORT_MAX_BYTES); "
            "a configuration file is a few kilobytes")


def check_node_count(node: yaml.Node | None, limit: int) -> None:
    """Refuse a YAML document whose aliases expand to more than ``limit`` values, or that refers to itself.

    The composed document shares an aliased node wherever it is used; the
    expanded size is counted over that graph (each node once, with a memo),
    so a billion laughs is found in microseconds instead of being built.
    """
    if node is None:
        return
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        key = id(current)
        if key in sizes:
            continue
        children = _children(current)
        if children_done:
            visiting.discard(key)
            sizes[key] = min(limit + 1, 1 + sum(sizes[id(child)] for child in children))
            continue
        if key in visiting:
            raise ConfigError("", "an alias refers to the node that contains it (a recursive YAML structure)")
        visiting.add(key)
        stack.append((current, True))
        for child in children:
            if id(child) in visiting:
                raise ConfigError("", "an alias refers to the node that contains it (a recursive YAML structure)")
            if id(child) not in sizes:
                stack.append((child, False))
    if sizes[id(node)] > limit:
        raise ConfigError("", f"the file's aliases expand to more than {limit:,} values (RELAY_IMPORT_MAX_NODES): "
                              "refused (a 'billion laughs'?)")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class LimitedInterpolation(configparser.BasicInterpolation):
    """configparser's ``%(name)s`` interpolation, refusing a value that expands beyond RELAY_IMPORT_MAX_BYTES.

    Ten levels of references, each using the one below several times, would
    otherwise expand a small file into gigabytes.
    """

    #: id of a value's list of parts being expanded -> (parts counted, their characters)
    _expanded: dict[int, tuple[int, int]]

    def before_get(self, parser, section, option, value, defaults):
        self._expanded = {}
        return super().before_get(parser, section, option, value, defaults)

    def _interpolate_some(self, parser, option, accum, rest, section, map, depth):
        # Counted as it grows: the parts already counted are not summed again.
        counted, size = self._expanded.get(id(accum), (0, 0))
        size += sum(len(part) for part in accum[counted:])
        self._expanded[id(accum)] = (len(accum), size)
        limit = settings.RELAY_IMPORT_MAX_BYTES
        if size > limit:
            raise ConfigError(f"[{section}] {option}", f"its %(name)s references expand to more than {limit:,} "
                              "characters (RELAY_IMPORT_MAX_BYTES): refused")
        return super()._interpolate_some(parser, option, accum, rest, section, map, depth)


def yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """What is wrong with a YAML file, and where, without quoting it."""
    # Only the problem and where it is: PyYAML's own message quotes the line, which may hold a password.
    where = ""
    if exc.problem_mark is not None:
        where = f" (line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1})"
    context = ""
    if exc.context:
        started = f" from line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        context = f"{exc.context}{started}: "
    return f"{context}{exc.problem or 'cannot be parsed'}{where}"


class BoundedYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in a mapping, and aliases that expand beyond bounds."""

    def get_single_node(self):
        node = super().get_single_node()
        check_node_count(node, settings.RELAY_IMPORT_MAX_NODES)
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable):
                if key in seen:
                    raise ConfigError("", f"key {key!r} given twice (line {key_node.start_mark.line + 1})")
                seen.add(key)
        return super().construct_mapping(node, deep)
