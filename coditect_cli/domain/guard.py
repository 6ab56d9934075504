"""The ownership guard: a pre-commit hook, scoped to one stream's worktree, generated from the manifest.

The hook is a self-contained Python script with the stream's rules embedded (regexes from the same
CODEOWNERS translation the validator uses), so a commit costs one git call and no manifest parsing.
It rejects a commit touching files the stream does not own, naming each file and its owner; shared paths
pass with a note. It then runs the repository's own pre-commit hook, if any, so nothing is disabled.
"""

from __future__ import annotations

import json

from coditect_cli.domain.manifest import Manifest, RepoId, StreamId
from coditect_cli.domain.ownership import ownership

HOOK_MARKER = "# coditect ownership guard"

_HOOK = """#!/usr/bin/env python3
{marker} (generated: `coditect streams setup` rewrites it; bypass once with `git commit --no-verify`)
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

PHASE = {phase}
STREAM = {stream}
REPO = {repo}
RULES = json.loads({rules})


def owners(path):
    shared = [r for r in RULES if r["shared"] and re.search(r["regex"], path)]
    if shared:
        return sorted({{s for r in shared for s in r["streams"]}}), True
    return sorted({{s for r in RULES if not r["shared"] and re.search(r["regex"], path) for s in r["streams"]}}), False


def main():
    out = subprocess.run(
        ["git", "diff", "--cached", "--name-only", "--no-renames", "-z"],
        capture_output=True, text=True, check=True,
    ).stdout
    paths = [p for p in out.split("\\0") if p]
    refused, notes = [], []
    for path in paths:
        streams, shared = owners(path)
        if STREAM in streams:
            if shared:
                others = ", ".join(s for s in streams if s != STREAM)
                notes.append(f"  {{path}}: shared with {{others}}; their approval is needed on the PR")
            continue
        who = ", ".join(f"{{s}} ({{OWNERS.get(s, '?')}})" for s in streams) if streams else "no stream"
        refused.append(f"  {{path}}  owned by {{who}}")
    if notes:
        print("coditect: committing shared paths:", *notes, sep="\\n", file=sys.stderr)
    if refused:
        print(
            f"coditect: stream {{STREAM}} may not commit these files in {{REPO}} (phase {{PHASE}}):",
            *refused,
            "Commit only in the paths your stream owns, or hand the change to the owning stream.",
            sep="\\n",
            file=sys.stderr,
        )
        return 1
    chained = {chained}
    if chained and os.access(chained, os.X_OK):
        return subprocess.call([chained, *sys.argv[1:]])
    return 0


OWNERS = json.loads({owners})

if __name__ == "__main__":
    sys.exit(main())
"""


def hook_script(manifest: Manifest, stream: StreamId, repo: RepoId, chained: str | None = None) -> str:
    """The pre-commit hook text for ``stream`` working in ``repo``.

    ``chained`` is the repository's own pre-commit hook, run after the ownership check passes.
    """
    rules = [
        {"pattern": r.pattern, "regex": r.regex.pattern, "streams": list(r.streams), "shared": r.shared}
        for r in ownership(manifest)[repo].rules
    ]
    owners = {s.id: s.code_owner for s in manifest.streams}
    return _HOOK.format(
        marker=HOOK_MARKER,
        phase=json.dumps(manifest.phase),
        stream=json.dumps(stream),
        repo=json.dumps(repo),
        rules=repr(json.dumps(rules)),
        owners=repr(json.dumps(owners)),
        chained=repr(chained),
    )
