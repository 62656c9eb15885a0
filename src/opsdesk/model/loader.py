"""Load an operating model from YAML, keeping the line and column of every field.

The YAML is composed into a node tree (SafeLoader) so that each problem, whether a
duplicate key, a pydantic validation error or a checker finding, can be reported as
``FILE:LINE:COL``.

Model files come from people, so the loader bounds what one can cost: a file larger
than ``max_bytes`` is refused before it is read, and aliases may expand to at most
:data:`MAX_ALIAS_NODES` nodes in all (a "billion laughs" file is refused at the alias
that crosses the limit, as ``FILE:LINE:COL``, instead of expanding for minutes).
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from opsdesk.model.schema import OperatingModel, Severity

PathKey = tuple[str | int, ...]
Position = tuple[int, int]

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_STR_TAG = "tag:yaml.org,2002:str"

#: The largest model file read (bytes); ``OPSDESK_MODEL_MAX_BYTES`` overrides it in the
#: CLI and the desk. The example model is about 30 KB.
MAX_MODEL_BYTES = 1_048_576
#: Nodes that aliases may expand to, summed over every alias in the file. A model uses a
#: few aliases for shared lists, far below this; a billion-laughs file passes it at once.
MAX_ALIAS_NODES = 10_000


@dataclass(frozen=True)
class Problem:
    """One finding about a model file, printable as ``FILE:LINE:COL: severity: message``."""

    severity: Severity
    message: str
    file: str
    line: int
    col: int
    code: str = ""

    def format(self) -> str:
        """Render the problem the way compilers do, e.g. ``m.yaml:4:18: error: ...``."""
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}"

    @property
    def is_error(self) -> bool:
        """True for errors, False for warnings."""
        return self.severity == "error"


@dataclass
class LoadResult:
    """The loaded model (None when it could not be built) and the load problems."""

    model: OperatingModel | None
    problems: list[Problem]
    positions: dict[PathKey, Position] = field(default_factory=dict)
    key_positions: dict[PathKey, Position] = field(default_factory=dict)
    filename: str = "<string>"

    def position(self, path: PathKey, *, key: bool = False) -> Position:
        """Position of ``path``, or of its nearest known ancestor.

        With ``key=True`` the position of the mapping key is preferred (useful for
        "unknown field" messages); otherwise the value's.
        """
        probe = tuple(path)
        while True:
            if key and probe in self.key_positions:
                return self.key_positions[probe]
            if probe in self.positions:
                return self.positions[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def problem(
        self, severity: Severity, message: str, path: PathKey, *, code: str = "", key: bool = False
    ) -> Problem:
        """Build a Problem located at ``path`` in this file."""
        line, col = self.position(path, key=key)
        return Problem(severity, message, self.filename, line, col, code)

    @property
    def has_errors(self) -> bool:
        """True when any load problem is an error."""
        return any(p.is_error for p in self.problems)


class AliasLimitExceeded(yaml.MarkedYAMLError):
    """Aliases in the file expand to more nodes than a model can need, or refer to
    themselves; the mark is the alias that crossed the line."""


class _ModelYamlLoader(yaml.SafeLoader):
    """SafeLoader without the YAML 1.1 surprises that bite configuration files.

    ``17:30`` would otherwise load as the integer 1050 (base-60) and ``NO`` (Norway) as
    False; both are read as strings here. Alias expansion is bounded (see the module).
    """

    def __init__(self, stream: Any, max_alias_nodes: int = MAX_ALIAS_NODES) -> None:
        super().__init__(stream)
        self._max_alias_nodes = max_alias_nodes
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}

    # PyYAML has no expansion limit of its own (it shares aliased nodes, and everything
    # that walks the tree afterwards pays for the expansion), so aliases are costed here.
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            node = self.anchors.get(event.anchor)
            if node is not None:
                if node.end_mark is None:  # still being composed: the alias is inside it
                    raise AliasLimitExceeded(
                        None,
                        None,
                        f"alias *{event.anchor} refers to the node it is part of "
                        "(a recursive structure); a model cannot contain one",
                        event.start_mark,
                    )
                self._alias_nodes += self._expanded_size(node)
                if self._alias_nodes > self._max_alias_nodes:
                    raise AliasLimitExceeded(
                        None,
                        None,
                        f"aliases expand to more than {self._max_alias_nodes:,} nodes at "
                        f"*{event.anchor} (a 'billion laughs' file?); write the values out "
                        "or use fewer aliases",
                        event.start_mark,
                    )
        return super().compose_node(parent, index)

    def _expanded_size(self, node: yaml.Node) -> int:
        """How many nodes ``node`` stands for once every alias inside it is expanded."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._expanded_size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._expanded_size(k) + self._expanded_size(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if kind is yaml.ScalarNode and implicit[0] and isinstance(value, str):
            if tag in (_INT_TAG, _FLOAT_TAG) and ":" in value:
                return _STR_TAG
            if tag == _BOOL_TAG and value.lower() not in ("true", "false"):
                return _STR_TAG
        return tag


def load_yaml_bounded(text: str) -> Any:
    """Parse a small configuration file the way the model is parsed: safe types only,
    ``17:30`` and ``NO`` read as strings, and aliases bounded (:class:`AliasLimitExceeded`,
    a ``yaml.MarkedYAMLError`` carrying the alias's position; other ``yaml.YAMLError``
    as PyYAML raises them). For the importers' status maps and the like."""
    loader = _ModelYamlLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _pos(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _index_nodes(
    node: yaml.Node,
    path: PathKey,
    positions: dict[PathKey, Position],
    key_positions: dict[PathKey, Position],
    duplicates: list[tuple[PathKey, Position]],
) -> None:
    """Record the position of every node and report duplicate mapping keys."""
    positions[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                duplicates.append((child, _pos(key_node)))
                continue
            seen.add(key)
            key_positions[child] = _pos(key_node)
            _index_nodes(value_node, child, positions, key_positions, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_nodes(item, (*path, index), positions, key_positions, duplicates)


def format_path(path: PathKey) -> str:
    """Render ``("request_types", 3, "owner_team")`` as ``request_types[3].owner_team``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated so the container or model type is visible."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _model_class_at(path: PathKey) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``path``, if any."""
    current: Any = OperatingModel
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is list and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _validation_problems(error: ValidationError, result: LoadResult) -> list[Problem]:
    problems: list[Problem] = []
    for item in error.errors():
        loc: PathKey = tuple(item["loc"])
        kind = item["type"]
        where = format_path(loc)
        if kind == "missing":
            parent = loc[:-1]
            owner = format_path(parent) or "the top level"
            problems.append(
                result.problem(
                    "error",
                    f"{owner}: missing required field '{loc[-1]}'",
                    parent,
                    code="schema",
                )
            )
        elif kind == "extra_forbidden":
            name = str(loc[-1])
            model_cls = _model_class_at(loc[:-1])
            hint = ""
            if model_cls is not None:
                close = difflib.get_close_matches(name, list(model_cls.model_fields), n=1)
                if close:
                    hint = f" (did you mean '{close[0]}'?)"
            problems.append(
                result.problem(
                    "error", f"{where}: unknown field '{name}'{hint}", loc, code="schema", key=True
                )
            )
        elif loc and loc[-1] == "[key]":
            # A dict key failed validation (e.g. weekday 'monday'): point at the key.
            problems.append(
                result.problem(
                    "error",
                    f"{format_path(loc[:-1])}: invalid key: {item['msg']}",
                    loc[:-1],
                    code="schema",
                    key=True,
                )
            )
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(result.problem("error", f"{where}: {message}", loc, code="schema"))
    return problems


def _too_large(filename: str, size: int, max_bytes: int) -> LoadResult:
    message = (
        f"the file is {size:,} bytes, more than the {max_bytes:,} a model file may have "
        "(OPSDESK_MODEL_MAX_BYTES); is it the right file?"
    )
    return LoadResult(
        None, [Problem("error", message, filename, 1, 1, "too-large")], filename=filename
    )


def load_model_text(
    text: str, filename: str = "<string>", *, max_bytes: int = MAX_MODEL_BYTES
) -> LoadResult:
    """Parse and validate model YAML; never raises for bad input, returns problems.

    >>> load_model_text("name: x").problems[0].format()
    "<string>:1:1: error: the top level: missing required field 'teams'"
    """
    if len(text) > max_bytes or len(text.encode("utf-8")) > max_bytes:
        return _too_large(filename, len(text.encode("utf-8")), max_bytes)
    result = LoadResult(model=None, problems=[], filename=filename)
    loader = _ModelYamlLoader(text)
    try:
        try:
            root = loader.get_single_node()
            if root is None:
                result.problems.append(
                    Problem(
                        "error",
                        "the file is empty: expected a mapping with "
                        "teams, roles, request_types, ...",
                        filename,
                        1,
                        1,
                        "yaml",
                    )
                )
                return result
            duplicates: list[tuple[PathKey, Position]] = []
            _index_nodes(root, (), result.positions, result.key_positions, duplicates)
            for path, (line, col) in duplicates:
                result.problems.append(
                    Problem(
                        "error",
                        f"duplicate key '{path[-1]}' in {format_path(path[:-1]) or 'the top level'}"
                        " (the later value would silently win)",
                        filename,
                        line,
                        col,
                        "duplicate-key",
                    )
                )
            if not isinstance(root, yaml.MappingNode):
                line, col = _pos(root)
                result.problems.append(
                    Problem(
                        "error",
                        "the top level must be a mapping (name:, teams:, roles:, ...)",
                        filename,
                        line,
                        col,
                        "yaml",
                    )
                )
                return result
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except AliasLimitExceeded as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        result.problems.append(
            Problem("error", str(exc.problem), filename, line, col, "yaml-aliases")
        )
        return result
    except RecursionError:
        result.problems.append(
            Problem(
                "error",
                "the YAML is nested too deeply to be a model",
                filename,
                1,
                1,
                "yaml",
            )
        )
        return result
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or exc.context or "invalid YAML"
        context_mark = exc.context_mark
        if exc.context and exc.problem and context_mark is not None:
            detail += (
                f" ({exc.context} at line {context_mark.line + 1},"
                f" column {context_mark.column + 1})"
            )
        result.problems.append(
            Problem("error", f"YAML syntax error: {detail}", filename, line, col, "yaml")
        )
        return result
    except yaml.YAMLError as exc:
        result.problems.append(Problem("error", f"YAML error: {exc}", filename, 1, 1, "yaml"))
        return result

    try:
        model = OperatingModel.model_validate(data)
    except ValidationError as exc:
        result.problems.extend(_validation_problems(exc, result))
        return result
    if not result.has_errors:
        result.model = model
    return result


def load_model_file(path: str | Path, *, max_bytes: int = MAX_MODEL_BYTES) -> LoadResult:
    """Read and load a model file; a missing, unreadable or oversized file is a problem,
    not a crash (an oversized one is refused before it is read)."""
    filename = str(path)
    try:
        with Path(path).open("rb") as handle:
            # read one byte past the limit: enough to refuse, whatever stat says (pipes)
            raw = handle.read(max_bytes + 1)
        if len(raw) > max_bytes:
            size = max(len(raw), Path(path).stat().st_size)
            return _too_large(filename, size, max_bytes)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        return LoadResult(
            None,
            [Problem("error", "file not found; check the path", filename, 1, 1, "io")],
            filename=filename,
        )
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(
            None,
            [Problem("error", f"cannot read file: {exc}", filename, 1, 1, "io")],
            filename=filename,
        )
    return load_model_text(text, filename, max_bytes=max_bytes)
