"""Semantic checks of a manifest against itself and the repositories on disk.

Each check appends :class:`~coditect_cli.errors.Problem` values located at the YAML node they concern; the
caller decides what to do with errors and warnings. Nothing here prints or exits.
"""

from __future__ import annotations

import posixpath
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from coditect_cli.domain.graph import find_cycle
from coditect_cli.domain.loader import Loaded, Source
from coditect_cli.domain.manifest import Gate, Manifest, RepoId
from coditect_cli.domain.ownership import (
    RepoOwnership,
    overlap_candidates,
    owned_path_problem,
    ownership,
    rules_overlap,
)
from coditect_cli.domain.refnames import BranchSet, ref_name_problem
from coditect_cli.domain.repo import RepoReader, TrackedFiles
from coditect_cli.errors import Problem

# How many file names a single "unowned files" warning lists before summarising.
_SHOW_FILES = 5


@dataclass(frozen=True)
class RepoSummary:
    """What validation saw of one repository."""

    id: str
    path: str
    tracked: int
    unowned: int
    streams: tuple[str, ...]


@dataclass(frozen=True)
class ValidationReport:
    """Every problem found in a manifest, plus a summary of what was checked."""

    phase: str
    manifest: str
    problems: tuple[Problem, ...]
    repositories: tuple[RepoSummary, ...] = ()
    streams: int = 0
    pairs: int = 0
    tasks: int = 0

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Checker:
    manifest: Manifest
    source: Source
    root: Path
    reader: RepoReader | None
    problems: list[Problem] = field(default_factory=list)
    repo_summaries: list[RepoSummary] = field(default_factory=list)
    _tracked: dict[Path, TrackedFiles] = field(default_factory=dict)

    # -- helpers ----------------------------------------------------------------------------------------
    def error(self, code: str, message: str, *path: str | int) -> None:
        self.problems.append(self.source.problem(code, message, *path))

    def warn(self, code: str, message: str, *path: str | int) -> None:
        self.problems.append(self.source.problem(code, message, *path, severity="warning"))

    def stream_index(self, stream_id: str) -> int:
        return next((i for i, s in enumerate(self.manifest.streams) if s.id == stream_id), 0)

    def _duplicates(self, what: str, items: Iterable[tuple[str, tuple[str | int, ...]]]) -> None:
        seen: dict[str, tuple[str | int, ...]] = {}
        for value, path in items:
            if value in seen:
                first = self.source.locate(*seen[value])
                self.error(
                    "duplicate-id", f"duplicate {what} {value!r} (first defined at line {first.line})", *path
                )
            else:
                seen[value] = path

    # -- checks -----------------------------------------------------------------------------------------
    def check_ids(self) -> None:
        m = self.manifest
        self._duplicates(
            "repository id", ((r.id, ("repositories", i, "id")) for i, r in enumerate(m.repositories))
        )
        self._duplicates("host name", ((h.name, ("hosts", i, "name")) for i, h in enumerate(m.hosts)))
        self._duplicates("stream id", ((s.id, ("streams", i, "id")) for i, s in enumerate(m.streams)))
        self._duplicates(
            "terminal number",
            ((str(s.terminal), ("streams", i, "terminal")) for i, s in enumerate(m.streams)),
        )
        self._duplicates(
            "task id",
            (
                (d.id, ("streams", i, "deliverables", j, "id"))
                for i, s in enumerate(m.streams)
                for j, d in enumerate(s.deliverables)
            ),
        )
        self._duplicates(
            "checkpoint id", ((str(c.id), ("checkpoints", i, "id")) for i, c in enumerate(m.checkpoints))
        )
        for i, s in enumerate(m.streams):
            self._duplicates(
                f"repository in the work of stream {s.id!r}",
                ((w.repo, ("streams", i, "work", j, "repo")) for j, w in enumerate(s.work)),
            )
            self._duplicates(
                f"gate name in stream {s.id!r}",
                ((g.name, ("streams", i, "gates", j, "name")) for j, g in enumerate(s.gates)),
            )
        for i, c in enumerate(m.checkpoints):
            self._duplicates(
                f"gate name in checkpoint {c.id}",
                ((g.name, ("checkpoints", i, "gates", j, "name")) for j, g in enumerate(c.gates)),
            )

    def check_references(self) -> None:
        m = self.manifest
        repos = {r.id for r in m.repositories}
        streams = {s.id for s in m.streams}
        tasks = {d.id for s in m.streams for d in s.deliverables}

        def ref(kind: str, known: set[str], value: str, *path: str | int) -> None:
            if value not in known:
                self.error(
                    f"unknown-{kind}", f"unknown {kind} {value!r} (known: {', '.join(sorted(known))})", *path
                )

        hosts = {h.name for h in m.hosts}
        for i, s in enumerate(m.streams):
            if s.host is not None:
                ref("host", hosts, s.host, "streams", i, "host")
            for j, w in enumerate(s.work):
                ref("repository", repos, w.repo, "streams", i, "work", j, "repo")
            for j, dep in enumerate(s.depends_on):
                ref("stream", streams, dep, "streams", i, "depends_on", j)
                if dep == s.id:
                    self.error("cycle", f"stream {s.id!r} depends on itself", "streams", i, "depends_on", j)
            for j, d in enumerate(s.deliverables):
                for k, dep in enumerate(d.depends_on):
                    ref("task", tasks, dep, "streams", i, "deliverables", j, "depends_on", k)
            own_repos = {w.repo for w in s.work}
            for j, g in enumerate(s.gates):
                if g.repo is not None and g.repo not in own_repos:
                    self.error(
                        "unknown-repository",
                        f"gate {g.name!r} runs in {g.repo!r}, where stream {s.id!r} does not work",
                        "streams",
                        i,
                        "gates",
                        j,
                        "repo",
                    )
        for i, sh in enumerate(m.shared):
            ref("repository", repos, sh.repo, "shared", i, "repo")
            for j, sid in enumerate(sh.streams):
                ref("stream", streams, sid, "shared", i, "streams", j)
        for i, c in enumerate(m.checkpoints):
            for j, sid in enumerate(c.streams):
                ref("stream", streams, sid, "checkpoints", i, "streams", j)
            self._gate_repos(c.gates, repos, "checkpoints", i, "gates")
        self._gate_repos(m.merge.suite, repos, "merge", "suite")

    def _gate_repos(self, gates: Iterable[Gate], repos: set[str], *path: str | int) -> None:
        for j, g in enumerate(gates):
            if g.repo is not None and g.repo not in repos:
                self.error(
                    "unknown-repository",
                    f"unknown repository {g.repo!r} (known: {', '.join(sorted(repos))})",
                    *path,
                    j,
                    "repo",
                )

    def check_cycles(self) -> None:
        m = self.manifest
        stream_edges = {s.id: [d for d in s.depends_on if d != s.id] for s in m.streams}
        cycle = find_cycle(stream_edges)
        if cycle:
            self.error(
                "cycle",
                "streams depend on each other in a cycle: " + " → ".join(cycle),
                "streams",
                self.stream_index(cycle[0]),
                "depends_on",
            )
        task_edges: dict[str, list[str]] = {}
        where: dict[str, tuple[int, int]] = {}
        for i, s in enumerate(m.streams):
            for j, d in enumerate(s.deliverables):
                task_edges[d.id] = list(d.depends_on)
                where[d.id] = (i, j)
        cycle = find_cycle(task_edges)
        if cycle:
            i, j = where[cycle[0]]
            self.error(
                "cycle",
                "tasks depend on each other in a cycle: " + " → ".join(cycle),
                "streams",
                i,
                "deliverables",
                j,
                "depends_on",
            )

    def check_schedule(self) -> None:
        m = self.manifest
        last = m.schedule.last_day
        span = f"the schedule has {m.schedule.days} days" + (
            f" + {m.schedule.slack} of slack" if m.schedule.slack else ""
        )
        for i, c in enumerate(m.checkpoints):
            if c.day > last:
                self.error(
                    "checkpoint-after-schedule",
                    f"checkpoint {c.id} is on day {c.day}, after the last day of the phase ({span})",
                    "checkpoints",
                    i,
                    "day",
                )
        for i, s in enumerate(m.streams):
            for j, d in enumerate(s.deliverables):
                if d.days.last > last:
                    self.error(
                        "deliverable-after-schedule",
                        f"task {d.id!r} runs to day {d.days.last}, after the last day of the phase ({span})",
                        "streams",
                        i,
                        "deliverables",
                        j,
                        "days",
                    )
        weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[m.schedule.start.weekday()]
        if weekday not in m.schedule.workdays:
            self.warn(
                "start-not-workday",
                f"the phase starts on {m.schedule.start} ({weekday}), which is not a workday; "
                "day 1 is the next workday",
                "schedule",
                "start",
            )

    def check_branch_names(self) -> None:
        m = self.manifest
        names: list[tuple[str, str, tuple[str | int, ...]]] = [
            ("base branch", m.branches.base, ("branches", "base")),
            ("develop branch", m.branches.develop, ("branches", "develop")),
            ("integration branch", m.integration_branch, ("branches", "integration")),
            ("merge target", m.merge.target, ("merge", "target")),
        ]
        for i, s in enumerate(m.streams):
            for j, w in enumerate(s.work):
                names.append(
                    (
                        f"feature branch of stream {s.id!r}",
                        m.feature_branch(s, w),
                        ("streams", i, "work", j, "topic"),
                    )
                )
        for what, name, path in names:
            reason = ref_name_problem(name)
            if reason:
                self.error(
                    "bad-branch-name", f"{what} {name!r} is not a valid git branch name: {reason}", *path
                )
        if m.merge.tag is not None:
            reason = ref_name_problem(m.merge.tag, branch=False)
            if reason:
                self.error(
                    "bad-tag-name",
                    f"tag {m.merge.tag!r} is not a valid git tag name: {reason}",
                    "merge",
                    "tag",
                )
        # The integration branch is where streams merge before the phase lands on develop (or the merge
        # target): were it one of them, checkpoints would move the target branch itself.
        for what, name, where in (
            ("base branch", m.branches.base, ("branches", "base")),
            ("develop branch", m.branches.develop, ("branches", "develop")),
            ("merge target", m.merge.target, ("merge", "target")),
        ):
            if name == m.integration_branch:
                self.error(
                    "integration-is-target",
                    f"the integration branch {name!r} is also the {what} ({'.'.join(where)}); "
                    "the phase needs its own integration branch",
                    "branches",
                    "integration",
                )
        # Branches living in one repository must not clash as directory and file (a/b vs a/b/c).
        per_repo: dict[str, BranchSet] = defaultdict(
            lambda: BranchSet([m.branches.base, m.branches.develop, m.integration_branch])
        )
        for i, s in enumerate(m.streams):
            for j, w in enumerate(s.work):
                clash = per_repo[w.repo].add(m.feature_branch(s, w))
                if clash:
                    self.error(
                        "branch-clash",
                        f"branches {clash[0]!r} and {clash[1]!r} cannot both exist in repository "
                        f"{w.repo!r} (one is a directory of the other)",
                        "streams",
                        i,
                        "work",
                        j,
                        "topic",
                    )

    def check_repository_paths(self) -> dict[RepoId, Path]:
        """Check each repository path; return the ones that are usable work trees."""
        usable: dict[RepoId, Path] = {}
        seen: dict[str, str] = {}
        seen_resolved: dict[Path, str] = {}
        root = self.root.resolve()
        for i, r in enumerate(self.manifest.repositories):
            where = ("repositories", i, "path")
            raw = r.path
            if raw.startswith(("/", "~")) or Path(raw).is_absolute() or (len(raw) > 1 and raw[1] == ":"):
                self.error(
                    "repo-path-absolute",
                    f"repository {r.id!r}: path {raw!r} is absolute; give it relative to the project root",
                    *where,
                )
                continue
            norm = posixpath.normpath(raw.replace("\\", "/"))
            if norm == ".." or norm.startswith("../"):
                self.error(
                    "repo-path-escapes", f"repository {r.id!r}: path {raw!r} escapes the project root", *where
                )
                continue
            if norm in seen:
                self.error(
                    "duplicate-repo-path",
                    f"repository {r.id!r} has the same path as repository {seen[norm]!r}",
                    *where,
                )
                continue
            seen[norm] = r.id
            full = (root / norm).resolve()
            if full != root and root not in full.parents:
                self.error(
                    "repo-path-escapes",
                    f"repository {r.id!r}: path {raw!r} leads outside the project root (through a link)",
                    *where,
                )
                continue
            if full in seen_resolved:
                self.error(
                    "duplicate-repository",
                    f"repositories {seen_resolved[full]!r} and {r.id!r} are the same directory "
                    f"({norm} resolves through a link to the path of {seen_resolved[full]!r}); "
                    "register each repository once",
                    *where,
                )
                continue
            seen_resolved[full] = r.id
            if self.reader is None:
                continue
            if not full.is_dir():
                self.error("repo-not-found", f"repository {r.id!r}: {norm} does not exist", *where)
            elif not self.reader.is_work_tree(full):
                hint = (
                    " (an uninitialised submodule? run `git submodule update --init`)"
                    if full.is_dir() and not any(full.iterdir())
                    else ""
                )
                self.error(
                    "not-a-repository", f"repository {r.id!r}: {norm} is not a git repository{hint}", *where
                )
            else:
                usable[RepoId(r.id)] = full
        return usable

    def check_worktrees(self, nested: dict[str, str]) -> None:
        """The worktrees folder is a folder of the project (also after links), outside every nested repository.

        ``nested`` maps the root-relative path of every repository below the root (the manifest's and the
        submodules git knows) to its name. The model has already refused absolute, escaping and ``.git`` paths.
        """
        folder = self.manifest.worktrees
        root = self.root.resolve()
        full = (root / folder).resolve()
        if full == root or root not in full.parents:
            self.error(
                "worktrees-outside",
                f"worktrees: {folder!r} leads outside the project (through a link); give a folder inside it",
                "worktrees",
            )
            return
        inside = full.relative_to(root).as_posix()
        if ".git" in inside.split("/"):
            self.error(
                "worktrees-in-git",
                f"worktrees: {folder!r} leads into a '.git' folder (through a link)",
                "worktrees",
            )
            return
        for path, name in sorted(nested.items()):
            if any(f == path or f.startswith(path + "/") for f in (folder, inside)):
                self.error(
                    "worktrees-in-repository",
                    f"worktrees: {folder!r} is inside {name} ({path}); worktrees there would be untracked "
                    "files of that repository; choose a folder outside it",
                    "worktrees",
                )
                return

    def nested_repositories(self, usable: dict[RepoId, Path]) -> dict[str, str]:
        """Root-relative paths of the repositories below the root: the manifest's, and the submodules
        (gitlinks) of the usable ones."""
        root = self.root.resolve()
        out: dict[str, str] = {}
        for r in self.manifest.repositories:
            norm = posixpath.normpath(r.path.replace("\\", "/"))
            if norm != ".":
                out[norm] = f"repository {r.id!r}"
        for path in usable.values():
            base = path.relative_to(root).as_posix() if path != root else ""
            for link in self.tracked(path).gitlinks:
                where = f"{base}/{link}" if base else link
                out.setdefault(where, f"the submodule {where!r}")
        return out

    def tracked(self, path: Path) -> TrackedFiles:
        """The tracked files at ``path`` (read once per run)."""
        assert self.reader is not None
        if path not in self._tracked:
            self._tracked[path] = self.reader.tracked_files(path)
        return self._tracked[path]

    def check_owned_paths(self) -> None:
        m = self.manifest
        for i, s in enumerate(m.streams):
            for j, w in enumerate(s.work):
                for k, pattern in enumerate(w.owns):
                    reason = owned_path_problem(pattern)
                    if reason:
                        self.error(
                            "bad-owned-path",
                            f"stream {s.id!r} in {w.repo!r}: {reason}",
                            "streams",
                            i,
                            "work",
                            j,
                            "owns",
                            k,
                        )
                counts = Counter(w.owns)
                for k, pattern in enumerate(w.owns):
                    if counts[pattern] > 1 and w.owns.index(pattern) != k:
                        self.warn(
                            "duplicate-owned-path",
                            f"{pattern!r} is listed twice",
                            "streams",
                            i,
                            "work",
                            j,
                            "owns",
                            k,
                        )
        for i, sh in enumerate(m.shared):
            for k, pattern in enumerate(sh.paths):
                reason = owned_path_problem(pattern)
                if reason:
                    self.error(
                        "bad-owned-path", f"shared paths in {sh.repo!r}: {reason}", "shared", i, "paths", k
                    )

    def _owns_location(self, stream: str, repo: str, pattern: str) -> tuple[str | int, ...]:
        # Streams may share an id (reported separately): look for the entry that really has the pattern.
        for i, s in enumerate(self.manifest.streams):
            if s.id != stream:
                continue
            for j, w in enumerate(s.work):
                if w.repo == repo and pattern in w.owns:
                    return ("streams", i, "work", j, "owns", w.owns.index(pattern))
        return ("streams",)

    def check_pattern_overlap(self, rules: dict[RepoId, RepoOwnership]) -> None:
        reported: set[tuple[str, str, str, str]] = set()
        for repo, own in rules.items():
            stream_rules = own.stream_rules()
            shared_rules = own.shared_rules()
            for a_index, b_index in overlap_candidates(stream_rules):
                a, b = stream_rules[a_index], stream_rules[b_index]
                if a.streams == b.streams or not rules_overlap(a, b):
                    continue
                # Overlap inside a path declared shared by both streams is the point of `shared`.
                both = set(a.streams) | set(b.streams)
                if any(
                    set(sh.streams) >= both and (rules_overlap(sh, a) and rules_overlap(sh, b))
                    for sh in shared_rules
                ):
                    continue
                key = (repo, a.pattern, b.pattern, ",".join(sorted(both)))
                if key in reported:
                    continue
                reported.add(key)
                self.error(
                    "ownership-overlap",
                    f"in repository {repo!r}, {a.pattern!r} of stream {a.streams[0]!r} overlaps "
                    f"{b.pattern!r} of stream {b.streams[0]!r}; split the paths or declare them `shared`",
                    *self._owns_location(b.streams[0], repo, b.pattern),
                )
            combined = (*shared_rules, *stream_rules)
            for sh_index, r_index in overlap_candidates(combined):
                if sh_index >= len(shared_rules) or r_index < len(shared_rules):
                    continue
                sh, r = combined[sh_index], combined[r_index]
                if r.streams[0] not in sh.streams and rules_overlap(sh, r):
                    self.error(
                        "ownership-overlap",
                        f"in repository {repo!r}, {r.pattern!r} of stream {r.streams[0]!r} overlaps the "
                        f"shared path {sh.pattern!r} of {', '.join(sh.streams)}",
                        *self._owns_location(r.streams[0], repo, r.pattern),
                    )

    def check_tracked_files(self, usable: dict[RepoId, Path], rules: dict[RepoId, RepoOwnership]) -> None:
        assert self.reader is not None
        repo_index = {r.id: i for i, r in enumerate(self.manifest.repositories)}
        # Repository paths nested in another repository (submodules) are not that repository's files.
        for repo_id, path in usable.items():
            own = rules.get(repo_id, RepoOwnership(repo_id, ()))
            tracked = self.tracked(path)
            unowned: list[str] = []
            overlaps: dict[tuple[str, ...], list[str]] = defaultdict(list)
            for f in tracked.files:
                owners = own.owners(f)
                if not owners.streams:
                    unowned.append(f)
                elif owners.overlap:
                    overlaps[tuple(sorted(owners.streams))].append(f)
            for streams, files in overlaps.items():
                shown = ", ".join(files[:_SHOW_FILES]) + (
                    f" and {len(files) - _SHOW_FILES} more" if len(files) > _SHOW_FILES else ""
                )
                self.error(
                    "ownership-overlap-files",
                    f"in repository {repo_id!r}, {len(files)} tracked file(s) are owned by several streams "
                    f"({', '.join(streams)}): {shown}",
                    "repositories",
                    repo_index[repo_id],
                    "path",
                )
            if unowned and own.rules:
                shown = ", ".join(unowned[:_SHOW_FILES]) + (
                    f" and {len(unowned) - _SHOW_FILES} more" if len(unowned) > _SHOW_FILES else ""
                )
                self.warn(
                    "unowned-files",
                    f"in repository {repo_id!r}, {len(unowned)} tracked file(s) are owned by no stream: {shown}",
                    "repositories",
                    repo_index[repo_id],
                    "path",
                )
            streams = tuple(sorted({s for r in own.rules for s in r.streams}))
            self.repo_summaries.append(
                RepoSummary(
                    repo_id,
                    str(path.relative_to(self.root.resolve())) if path != self.root.resolve() else ".",
                    len(tracked.files),
                    len(unowned),
                    streams,
                )
            )


def validate(loaded: Loaded, root: Path, reader: RepoReader | None) -> ValidationReport:
    """Check ``loaded`` for every problem the model alone cannot see.

    With ``reader`` None, checks that need the repositories on disk (paths are git repositories, ownership
    of tracked files) are skipped.
    """
    m = loaded.manifest
    checker = _Checker(m, loaded.source, root, reader)
    checker.check_ids()
    checker.check_references()
    checker.check_cycles()
    checker.check_schedule()
    checker.check_branch_names()
    checker.check_owned_paths()
    usable = checker.check_repository_paths()
    rules = ownership(m)
    checker.check_pattern_overlap(rules)
    if reader is not None:
        checker.check_tracked_files(usable, rules)
    checker.check_worktrees(checker.nested_repositories(usable))
    return ValidationReport(
        phase=m.phase,
        manifest=loaded.source.display,
        problems=tuple(sorted(checker.problems, key=lambda p: p.location.line if p.location else 0)),
        repositories=tuple(checker.repo_summaries),
        streams=len(m.streams),
        pairs=sum(len(s.work) for s in m.streams),
        tasks=sum(len(s.deliverables) for s in m.streams),
    )
