#!/usr/bin/env python3
"""Quality gates of the CODITECT sandbox: small, genuine, stdlib-only checks.

Usage: python3 ci/check.py WHAT
WHAT is one of: opentofu, security, openapi, typescript, tests, kubernetes, docs, database.

Exit status: 0 when the check passes, 1 when it finds problems (listed one a line on stderr, the last
line a summary), 2 on bad usage. The checks look at the repository holding this script (the parent of
ci/), never into hidden directories, node_modules or nested repositories (submodules, worktrees).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
PRUNE = {"node_modules", "__pycache__", "venv"}
CLOSERS = {")": "(", "]": "[", "}": "{"}


def rel(path):
    return path.relative_to(ROOT).as_posix()


def read(path):
    return path.read_text(encoding="utf-8", errors="replace")


def walk(top, suffixes=None):
    """Files under ROOT/top (sorted), optionally only those whose name ends with one of suffixes."""
    base = ROOT / top if top else ROOT
    found = []
    if not base.is_dir():
        return found

    def visit(folder):
        for entry in sorted(folder.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                if entry.name.startswith(".") or entry.name in PRUNE or (entry / ".git").exists():
                    continue
                visit(entry)
            elif entry.is_file() and (suffixes is None or entry.name.endswith(suffixes)):
                found.append(entry)

    visit(base)
    return found


def brackets(text, line_comments, quotes, multiline_quotes=""):
    """The first bracket problem in text as "line N: message", or None when (), [], {} balance.

    Comments (line_comments, /* */) and string literals (quotes) are skipped; a quote not in
    multiline_quotes ends at the end of its line.
    """
    stack = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif any(text.startswith(marker, i) for marker in line_comments):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return "line %d: unterminated /* comment" % line
            line += text.count("\n", i, end)
            i = end + 2
        elif c in quotes:
            j = i + 1
            while j < n and text[j] != c and (text[j] != "\n" or c in multiline_quotes):
                j += 2 if text[j] == "\\" else 1
            end = j + 1 if j < n and text[j] == c else min(j, n)
            line += text.count("\n", i, end)
            i = end
        else:
            if c in "([{":
                stack.append((c, line))
            elif c in CLOSERS:
                if not stack:
                    return "line %d: unexpected %r" % (line, c)
                opener, opened = stack.pop()
                if opener != CLOSERS[c]:
                    return "line %d: %r closes %r opened on line %d" % (line, c, opener, opened)
            i += 1
    if stack:
        opener, opened = stack[-1]
        return "line %d: %r is never closed" % (opened, opener)
    return None


def check_opentofu():
    dirs = [d for d in ("opentofu", "terraform") if (ROOT / d).is_dir()]
    if not dirs:
        return 0, ["no opentofu/ or terraform/ directory"]
    files = [f for d in dirs for f in walk(d, (".tf", ".tfvars"))]
    if not files:
        return 0, ["no *.tf files under %s" % " or ".join(d + "/" for d in dirs)]
    problems = []
    for path in files:
        text = read(path)
        for number, line in enumerate(text.splitlines(), 1):
            if "TODO-BREAK" in line:
                problems.append("%s:%d: TODO-BREAK marker" % (rel(path), number))
        bad = brackets(text, ("#", "//"), '"')
        if bad:
            problems.append("%s: unbalanced brackets, %s" % (rel(path), bad))
    return len(files), problems


def check_security():
    files = walk("opentofu") + walk("terraform")
    problems = []
    for path in files:
        for number, line in enumerate(read(path).splitlines(), 1):
            if "0.0.0.0/0" in line or "::/0" in line:
                problems.append("%s:%d: open to the whole internet: %s" % (rel(path), number, line.strip()))
    return len(files), problems


def check_openapi():
    path = ROOT / "openapi.yaml"
    if not path.is_file():
        return 0, ["openapi.yaml: missing"]
    lines = read(path).splitlines()
    problems = []
    significant = [(n, text) for n, text in enumerate(lines, 1) if text.strip() and text.lstrip()[0] != "#"]
    if not significant or not significant[0][1].startswith("openapi:"):
        first = significant[0][0] if significant else 1
        problems.append("openapi.yaml:%d: must start with `openapi:`" % first)
    if not any(text.startswith("paths:") for text in lines):
        problems.append("openapi.yaml: no top-level `paths:`")
    seen = {}
    for number, line in enumerate(lines, 1):
        match = re.match(r"\s*operationId:\s*[\"']?([^\"'\s#]*)", line)
        if not match:
            continue
        op = match.group(1)
        if not op:
            problems.append("openapi.yaml:%d: empty operationId" % number)
        elif op in seen:
            problems.append(
                "openapi.yaml:%d: duplicate operationId %r (first on line %d)" % (number, op, seen[op])
            )
        else:
            seen[op] = number
    return 1, problems


def check_typescript():
    if not (ROOT / "src").is_dir():
        return 0, ["no src/ directory"]
    files = walk("src", (".ts", ".tsx"))
    if not files:
        return 0, ["no TypeScript files (*.ts, *.tsx) under src/"]
    problems = []
    for path in files:
        bad = brackets(read(path), ("//",), "'\"`", "`")
        if bad:
            problems.append("%s: unbalanced brackets, %s" % (rel(path), bad))
    return len(files), problems


TEST_NAME = re.compile(r"^(test_.*\.py|.*_test\.py|.*\.(test|spec)\.[jt]sx?)$")


def check_tests():
    if not (ROOT / "tests").is_dir():
        return 0, ["no tests/ directory"]
    problems = []
    if not [f for f in walk("tests") if TEST_NAME.match(f.name)]:
        problems.append("tests/: no test files (test_*.py, *_test.py, *.test.ts[x], *.spec.ts[x])")
    files = walk("tests") + walk("src")
    for path in files:
        for number, line in enumerate(read(path).splitlines(), 1):
            if "FAIL_GATE" in line:
                problems.append("%s:%d: FAIL_GATE marker" % (rel(path), number))
    return len(files), problems


def check_kubernetes():
    if not (ROOT / "kubernetes").is_dir():
        return 0, ["no kubernetes/ directory"]
    files = walk("kubernetes", (".yaml", ".yml"))
    if not files:
        return 0, ["no YAML files under kubernetes/"]
    problems = []
    for path in files:
        documents = [(1, [])]  # (first line, lines) of every "---"-separated document
        for number, line in enumerate(read(path).splitlines(), 1):
            if line.startswith("---"):
                documents.append((number + 1, []))
            else:
                documents[-1][1].append(line)
        for first, body in documents:
            content = [text for text in body if text.strip() and text.lstrip()[0] != "#"]
            if not content:
                continue
            for key in ("apiVersion", "kind"):
                if not any(re.match(r"%s:\s*\S" % key, text) for text in content):
                    problems.append("%s:%d: document has no `%s:`" % (rel(path), first, key))
    return len(files), problems


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")


def check_docs():
    files = walk("", ".md")
    problems = []
    for path in files:
        fenced = False
        for number, line in enumerate(read(path).splitlines(), 1):
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
                continue
            if fenced:
                continue
            for match in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
                target = match.group(1)
                if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith(("#", "//")):
                    continue
                target = unquote(target.split("#", 1)[0].split("?", 1)[0])
                resolved = ROOT / target.lstrip("/") if target.startswith("/") else path.parent / target
                if not resolved.exists():
                    problems.append("%s:%d: broken link to %s" % (rel(path), number, match.group(1)))
    return len(files), problems


def check_database():
    versions = ROOT / "alembic" / "versions"
    if not (ROOT / "alembic").is_dir():
        return 0, ["no alembic/ directory"]
    files = [f for f in walk("alembic/versions", ".py") if f.name != "__init__.py"]
    if not files:
        return 0, ["%s/: no migration files" % rel(versions)]
    problems, revisions = [], {}
    for path in files:
        text = read(path)
        rev = re.search(r"^revision\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
        down = re.search(r"^down_revision\s*=\s*(?:[\"']([^\"']+)[\"']|None)", text, re.M)
        if not rev or not down or not re.search(r"^def upgrade\(", text, re.M):
            needs = "needs `revision = ...`, `down_revision = ...` and `def upgrade()`"
            problems.append("%s: a migration %s" % (rel(path), needs))
            continue
        revisions[rev.group(1)] = (down.group(1), path)
    children = {}
    for rev, (down, path) in sorted(revisions.items()):
        if down is not None and down not in revisions:
            problems.append("%s: down_revision %r is not a known revision" % (rel(path), down))
        children.setdefault(down, []).append(rev)
    for parent, revs in sorted(children.items(), key=lambda item: str(item[0])):
        if len(revs) > 1:
            heads = ", ".join(revs)
            problems.append("alembic: %s all follow %r: multiple heads, merge them" % (heads, parent))
    return len(files), problems


CHECKS = {
    "opentofu": check_opentofu,
    "security": check_security,
    "openapi": check_openapi,
    "typescript": check_typescript,
    "tests": check_tests,
    "kubernetes": check_kubernetes,
    "docs": check_docs,
    "database": check_database,
}


def main(argv):
    if len(argv) != 2 or argv[1] not in CHECKS:
        if len(argv) == 2:
            print("check.py: unknown check %r" % argv[1], file=sys.stderr)
        print("usage: python3 ci/check.py {%s}" % "|".join(CHECKS), file=sys.stderr)
        return 2
    what = argv[1]
    checked, problems = CHECKS[what]()
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print("check %s: FAILED, %d problem(s): %s" % (what, len(problems), problems[0]), file=sys.stderr)
        return 1
    print("check %s: ok (%d file(s) checked in %s)" % (what, checked, ROOT.name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
