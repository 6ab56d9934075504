"""Git's ref-name rules (``git check-ref-format``), checked without starting git."""

from __future__ import annotations

_FORBIDDEN_CHARS = {
    " ": "a space",
    "~": "'~'",
    "^": "'^'",
    ":": "':'",
    "?": "'?'",
    "*": "'*'",
    "[": "'['",
    "\\": "a backslash",
}


def ref_name_problem(name: str, *, branch: bool = True) -> str | None:
    """Why git would reject ``name`` as a branch (or tag) name, or None when it is valid.

    Mirrors the rules of ``git check-ref-format --branch``: no ``..``, no control characters, none of
    space ``~ ^ : ? * [ \\``, no component starting with ``.`` or ending with ``.lock``, no empty component
    (``//``, leading or trailing ``/``), no trailing ``.``, no ``@{``, and (for branches) no leading ``-``
    and not ``HEAD``.
    """
    if not name:
        return "it is empty"
    if branch and name == "HEAD":
        return "'HEAD' is reserved"
    if branch and name.startswith("-"):
        return "it starts with '-'"
    if ".." in name:
        return "it contains '..'"
    if "@{" in name:
        return "it contains '@{'"
    for ch in name:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "it contains a control character"
        if ch in _FORBIDDEN_CHARS:
            return f"it contains {_FORBIDDEN_CHARS[ch]}"
    if name.startswith("/") or name.endswith("/"):
        return "it starts or ends with '/'"
    if name.endswith("."):
        return "it ends with '.'"
    for component in name.split("/"):
        if not component:
            return "it contains '//'"
        if component.startswith("."):
            return f"its component {component!r} starts with '.'"
        if component.endswith(".lock"):
            return f"its component {component!r} ends with '.lock'"
    return None


def directory_file_clash(names: list[str]) -> tuple[str, str] | None:
    """Two names git cannot hold at once because one is a directory of the other (``a/b`` and ``a/b/c``)."""
    ordered = sorted(set(names))
    for i, name in enumerate(ordered[:-1]):
        for other in ordered[i + 1 :]:
            if other.startswith(name + "/"):
                return name, other
            if not other.startswith(name):
                break
    return None


class BranchSet:
    """Branch names of one repository, added one at a time, that git can all hold at once.

    :meth:`add` is O(depth of the name): it keeps every name and every directory some name implies.
    """

    def __init__(self, names: list[str] | tuple[str, ...] = ()):
        self._names: set[str] = set()
        self._dirs: dict[str, str] = {}  # "a/b" -> a name below it ("a/b/c")
        for name in names:
            self.add(name)

    def add(self, name: str) -> tuple[str, str] | None:
        """Add ``name``; return the clash (``(directory, name below it)``) instead when there is one."""
        if name in self._names:
            return None
        if name in self._dirs:
            return name, self._dirs[name]
        parts = name.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts))]
        for prefix in prefixes:
            if prefix in self._names:
                return prefix, name
        self._names.add(name)
        for prefix in prefixes:
            self._dirs.setdefault(prefix, name)
        return None
