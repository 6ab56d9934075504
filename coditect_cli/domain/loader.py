"""Read a manifest file once: YAML with a line for every node, then the typed model.

Every problem found while reading — YAML syntax, duplicate keys, wrong types, unknown keys — becomes a
:class:`~coditect_cli.errors.Problem` that names the file and the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from coditect_cli.errors import Location, ManifestError, Problem

if TYPE_CHECKING:
    from coditect_cli.domain.manifest import Manifest

YamlPath = tuple[str | int, ...]

# Bounds on what a manifest may cost to read. A manifest of 10,000 streams is about 2 MB and 200,000 nodes;
# an alias "bomb" (a few hundred bytes whose aliases expand to billions of nodes) or a document nested
# thousands of levels deep (libyaml's composer recurses and crashes the process) is refused before it is
# built, naming the line.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_NODES = 500_000  # after alias expansion
MAX_DEPTH = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_COLLECTION_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


@dataclass(frozen=True)
class Source:
    """A manifest file and the line of every node in it, so later checks can point at the YAML."""

    path: Path
    display: str
    lines: dict[YamlPath, int] = field(default_factory=dict)

    def locate(self, *path: str | int) -> Location:
        """The location of the deepest known node on ``path`` (the file alone when nothing matches)."""
        key: YamlPath = tuple(path)
        while key:
            line = self.lines.get(key)
            if line is not None:
                return Location(self.display, line)
            key = key[:-1]
        return Location(self.display, self.lines.get((), 0))

    def problem(self, code: str, message: str, *path: str | int, severity: str = "error") -> Problem:
        """A problem located at ``path``."""
        return Problem(code, message, self.locate(*path), severity)


@dataclass(frozen=True)
class Loaded:
    """A parsed manifest with its source."""

    manifest: Manifest
    source: Source


class _Composer:
    """Turn a composed YAML node tree into plain Python data, recording each node's line."""

    def __init__(self, display: str):
        self.display = display
        self.lines: dict[YamlPath, int] = {}
        self.problems: list[Problem] = []
        self._scalar_loader = yaml.SafeLoader("")
        self._open: set[int] = set()  # nodes being built: an alias back to one of them is a cycle

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._open:
            self.problems.append(
                Problem(
                    "yaml-recursive-alias",
                    "an alias refers to a node that contains it (a cycle)",
                    Location(self.display, node.start_mark.line + 1),
                )
            )
            return None
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            self._open.add(id(node))
            try:
                return self._build_collection(node, path)
            finally:
                self._open.discard(id(node))
        if node.tag == _STR_TAG:
            return node.value  # most scalars: skip the constructor's bookkeeping
        try:
            return self._scalar_loader.construct_object(node, deep=True)
        except Exception as exc:  # PyYAML raises plain ValueError for e.g. 2026-13-45
            self.problems.append(
                Problem(
                    "yaml-value",
                    f"cannot read {node.value!r}: {exc}",
                    Location(self.display, node.start_mark.line + 1),
                )
            )
            return None

    def _build_collection(self, node: yaml.Node, path: YamlPath) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            merged: list[tuple[yaml.Node, yaml.Node]] = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    merged.extend(self._merge_sources(value_node))
                    continue
                key = self.build_scalar_key(key_node)
                if key in out:
                    self.problems.append(
                        Problem(
                            "duplicate-key",
                            f"key {key!r} appears twice in the same mapping",
                            Location(self.display, key_node.start_mark.line + 1),
                        )
                    )
                    continue
                # The key's own line points at `key:`; multi-line values start later.
                child: YamlPath = (*path, key)
                self.lines[child] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child)
            # YAML merge keys (`<<: *defaults`): keys written in the mapping win, then the sources in order.
            for key_node, value_node in merged:
                key = self.build_scalar_key(key_node)
                if key in out:
                    continue
                child = (*path, key)
                self.lines[child] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child)
            return out
        return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]

    def _merge_sources(self, node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
        """The (key, value) pairs a ``<<`` merge brings in: a mapping, or a sequence of mappings."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problems.append(
                    Problem(
                        "yaml-merge",
                        "a merge key `<<` takes a mapping (or a list of mappings), usually an alias *name",
                        Location(self.display, source.start_mark.line + 1),
                    )
                )
                continue
            if id(source) in self._open:
                self.problems.append(
                    Problem(
                        "yaml-recursive-alias",
                        "a merge key `<<` merges a mapping into itself (a cycle)",
                        Location(self.display, source.start_mark.line + 1),
                    )
                )
                continue
            for key_node, value_node in source.value:
                if key_node.tag == _MERGE_TAG:
                    pairs.extend(self._merge_sources(value_node))
                else:
                    pairs.append((key_node, value_node))
        return pairs

    def build_scalar_key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problems.append(
                Problem(
                    "bad-key",
                    "mapping keys must be plain scalars",
                    Location(self.display, node.start_mark.line + 1),
                )
            )
            return f"<complex key at line {node.start_mark.line + 1}>"
        if node.tag == _STR_TAG:
            return str(node.value)
        try:
            key = self._scalar_loader.construct_object(node)
        except Exception:
            key = node.value
        return key if isinstance(key, str) else str(key)


def _line_of(mark: Any) -> int:
    return mark.line + 1 if mark is not None else 0


def _too_large(display: str, line: int, what: str) -> ManifestError:
    return ManifestError(
        f"{display}: manifest too large",
        problems=(Problem("yaml-too-large", what, Location(display, line)),),
    )


def _check_depth(text: str, display: str, loader: type) -> bool:
    """Refuse nesting deeper than MAX_DEPTH by reading the event stream (which does not recurse).

    Return whether the document uses aliases.
    """
    depth = 0
    aliases = False
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            aliases = True
        if isinstance(event, _COLLECTION_START):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_large(
                    display,
                    _line_of(event.start_mark),
                    f"mappings and lists are nested more than {MAX_DEPTH} levels deep",
                )
        elif isinstance(event, _COLLECTION_END):
            depth -= 1
    return aliases


def _check_expansion(root: yaml.Node, display: str) -> None:
    """Refuse a document whose aliases expand to more than MAX_NODES nodes (an alias bomb).

    Each distinct node's expanded size is computed once, so this costs the size of the file, not of the
    expansion. The line named is that of the first node whose expansion passes the bound.
    """
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            sizes[id(node)] = 1
            continue
        if not expanded:
            if id(node) in sizes or id(node) in visiting:
                continue
            visiting.add(id(node))
            stack.append((node, True))
            # An alias back to a node being expanded is a cycle: the composer reports it; count it as one.
            stack.extend((c, False) for c in children if id(c) not in sizes and id(c) not in visiting)
            continue
        visiting.discard(id(node))
        total = 1 + sum(sizes.get(id(c), 1) for c in children)
        if total > MAX_NODES:
            raise _too_large(
                display,
                _line_of(node.start_mark),
                f"aliases expand this node to more than {MAX_NODES:,} values (an alias bomb?); "
                "write the values out or use fewer nested aliases",
            )
        sizes[id(node)] = total


def parse_yaml(text: str, display: str) -> tuple[Any, Source]:
    """Parse ``text``; raise ManifestError with file:line on syntax errors, duplicate keys, or a document
    too large, too deep or expanding too far through aliases."""
    if len(text) > MAX_MANIFEST_BYTES:
        raise _too_large(display, 0, f"the manifest is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MB")
    # libyaml's C parser when present (10x faster on large manifests); the pure-Python one otherwise.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        aliases = _check_depth(text, display, loader)
        node = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        if exc.context:
            what = f"{what} ({exc.context})"
        raise ManifestError(
            f"{display}: invalid YAML",
            problems=(
                Problem("yaml-syntax", f"YAML syntax error: {what}", Location(display, _line_of(mark))),
            ),
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(
            f"{display}: invalid YAML",
            problems=(Problem("yaml-syntax", f"YAML error: {exc}", Location(display, 0)),),
        ) from None
    composer = _Composer(display)
    if node is None:
        data: Any = None
    else:
        if aliases:
            _check_expansion(node, display)
        try:
            data = composer.build(node, ())
        except yaml.YAMLError as exc:
            line = _line_of(getattr(exc, "problem_mark", None))
            raise ManifestError(
                f"{display}: invalid YAML",
                problems=(Problem("yaml-value", f"cannot read value: {exc}", Location(display, line)),),
            ) from None
    source = Source(Path(display), display, composer.lines)
    if composer.problems:
        raise ManifestError(f"{display}: invalid manifest", problems=tuple(composer.problems))
    return data, source


def _dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


_FRIENDLY = {
    "extra_forbidden": "unknown key {key!r}",
    "missing": "missing required key {key!r}",
}


def _problems_from_validation(exc: ValidationError, source: Source) -> tuple[Problem, ...]:
    from coditect_cli.domain.manifest import KIND_TAG

    problems: list[Problem] = []
    for err in exc.errors():
        # Pydantic appends validator names for unions/tagged models; keep only the YAML path parts.
        loc = tuple(
            p for p in err["loc"] if isinstance(p, int) or not str(p).startswith(("function-", KIND_TAG))
        )
        etype = err["type"]
        key = loc[-1] if loc else ""
        if etype in _FRIENDLY:
            message = f"{_dotted(loc[:-1])}: " + _FRIENDLY[etype].format(key=key)
            where = source.locate(*loc) if etype == "extra_forbidden" else source.locate(*loc[:-1])
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            value = err.get("input")
            if etype == "string_pattern_mismatch":
                msg = (
                    f"{value!r} contains characters that are not allowed here "
                    "(use letters, digits, '.', '_' and '-'; must start with a letter or digit)"
                )
            elif etype in {
                "string_type",
                "int_type",
                "int_parsing",
                "date_type",
                "date_from_datetime_parsing",
                "bool_type",
                "tuple_type",
                "dict_type",
                "model_type",
                "list_type",
                "literal_error",
                "date_parsing",
            }:
                shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
                msg = f"{msg} (got {shown})"
            message = f"{_dotted(loc)}: {msg}"
            where = source.locate(*loc)
        problems.append(Problem(f"schema.{etype}", message, where))
    return tuple(problems)


def read_manifest(path: Path, display: str | None = None) -> str:
    """The text of the manifest at ``path``, read no further than the size bound; ManifestError when it
    is missing, unreadable, not UTF-8 or too large."""
    shown = display or str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)  # never read a huge file whole just to refuse it
        if len(raw) > MAX_MANIFEST_BYTES:
            raise _too_large(
                shown, 0, f"the manifest is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MB"
            )
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{shown}: no such manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{shown}: cannot read: {exc}") from None


def load_manifest(path: Path, display: str | None = None) -> Loaded:
    """Read and type-check the manifest at ``path``; raise ManifestError listing every problem."""
    shown = display or str(path)
    return load_manifest_text(read_manifest(path, shown), shown, path)


def load_manifest_text(text: str, display: str, path: Path | None = None) -> Loaded:
    """Parse manifest ``text`` (named ``display`` in messages)."""
    data, source = parse_yaml(text, display)
    if path is not None:
        source = Source(path, display, source.lines)
    if not isinstance(data, dict):
        raise ManifestError(
            f"{display}: invalid manifest",
            problems=(
                Problem(
                    "schema.not-a-mapping", "the manifest must be a YAML mapping of keys", source.locate()
                ),
            ),
        )
    # The model (and pydantic) load only for a document that parsed: a refused one costs no import.
    from coditect_cli.domain.manifest import Manifest

    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = _problems_from_validation(exc, source)
        raise ManifestError(
            f"{display}: {len(problems)} problem(s) in the manifest", problems=problems
        ) from None
    return Loaded(manifest, source)
