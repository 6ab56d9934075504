"""The resumable journal of ``checkpoint`` and ``merge-phase`` (migration 4 of the state store).

A command plans its steps, writes them to a journal (all ``pending``), then one executor runs them in
order. A step that moves refs journals each move (repository, ref, local or origin, old, new) *before*
moving it, and moves it with a compare-and-swap (``update-ref <ref> <new> <old>`` locally, ``push
--force-with-lease=<ref>:<old>`` on origin), so a move is either not done or done, never half done. A step
is marked ``done`` (with its JSON result) when all its work is in place.

Killed at any point, the journal stays open. ``--continue`` first checks it against the real refs (see
:func:`coditect_cli.domain.gating.reconcile`): a ref that is neither where the journal left it nor where
its pending step was taking it was moved by someone else, so the journal is not trusted (exit 4). Then the
executor carries on with the first pending step; steps are idempotent (a move already in place is skipped,
a PR already merged is not merged again). ``--abort`` undoes every move of the done steps (and the moves a
pending step already made), newest first, with the same compare-and-swap back to the old values, locally and
on origin, and lets each step kind undo its bookkeeping (reopen PRs marked merged, mark a result aborted).
Before putting a step back it journals that step as the one being undone, so an ``--abort`` killed between
two reverse moves is resumed by ``--abort`` (the reconciliation accepts that step's refs both where the run
moved them and where they were); such a run can no longer be continued.

Test hook: ``CODITECT_TEST_KILL_AT=<index>[:<point>]`` makes the executor SIGKILL its own process at step
``index``: ``done`` (default: right after the step is journaled done), ``journaled`` (its moves journaled,
not made) or ``moved`` (its moves made, the step not yet journaled done); during ``--abort``: ``undoing``
(the step journaled as being undone, nothing put back yet), ``back<k>`` (its k-th reverse move made) and
``undone``. Tests use it to stop a run at every step; it has no other use.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coditect_cli.adapters import proc
from coditect_cli.domain.gating import RefMove, StepRecord, reconcile
from coditect_cli.errors import CommandFailed, RefusedError, UnavailableError, UsageError
from coditect_cli.state import journal_records
from coditect_cli.state.journal_records import JournalInfo
from coditect_cli.state.store import Store

KILL_ENV = "CODITECT_TEST_KILL_AT"


def kill_hook(idx: int, point: str) -> None:
    """SIGKILL this process when ``CODITECT_TEST_KILL_AT`` names step ``idx`` at ``point`` (a test hook)."""
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    index, _, at = wanted.partition(":")
    if index.strip() == str(idx) and (at.strip() or "done") == point:
        os.kill(os.getpid(), signal.SIGKILL)


class Journal:
    """One command's journal in the store (see the module docstring); its rows are kept by
    :mod:`coditect_cli.state.journal_records`."""

    def __init__(self, store: Store, info: JournalInfo) -> None:
        self.store = store
        self.info = info
        self.run_id = info.run_id  # the store run of this invocation (a --continue is a run of its own)

    @property
    def id(self) -> int:
        """The journal's id."""
        return self.info.id

    # ------------------------------------------------------------------------------------------ opening

    @classmethod
    def begin(
        cls,
        store: Store,
        command: str,
        phase: str,
        subject: str,
        args: Mapping[str, Any],
        steps: Sequence[tuple[str, Mapping[str, Any]]],
        run_id: int | None,
    ) -> Journal:
        """Write a new open journal with ``steps`` (kind, payload), all pending; refuse when one is open."""
        with store.transaction():
            found = cls.find_open(store, phase)
            if found is not None:
                raise RefusedError(
                    f"`coditect {found.info.command}` ({found.info.subject or 'no subject'}) of phase {phase} "
                    f"was interrupted (journal {found.id}, started {found.info.started}); finish it first",
                    hint=f"`coditect {found.info.command} --continue` finishes it; "
                    f"`coditect {found.info.command} --abort` puts every ref it moved back",
                )
            journal_id = journal_records.add_journal(store, run_id, command, phase, subject, args, steps)
        journal = cls.load(store, journal_id)
        assert journal is not None
        return journal

    @classmethod
    def load(cls, store: Store, journal_id: int) -> Journal | None:
        """The journal with this id, or None."""
        info = journal_records.journal_info(store, journal_id)
        return None if info is None else cls(store, info)

    @classmethod
    def find_open(cls, store: Store, phase: str) -> Journal | None:
        """The open (interrupted or running) journal of ``phase``, or None."""
        journal_id = journal_records.open_journal_id(store, phase)
        return None if journal_id is None else cls.load(store, journal_id)

    # ------------------------------------------------------------------------------------------ steps

    def steps(self) -> list[StepRecord]:
        """Every step with its moves, in order."""
        return journal_records.journal_steps(self.store, self.id)

    def step(self, idx: int) -> StepRecord:
        """Step ``idx``."""
        return self.steps()[idx]

    def result_of(self, kind: str) -> dict[str, Any]:
        """The result of the first done step of ``kind`` (KeyError when there is none)."""
        for step in self.steps():
            if step.kind == kind and step.state == "done" and step.result is not None:
                return step.result
        raise KeyError(kind)

    def start(self, idx: int) -> None:
        """Note that step ``idx`` began (it may have changed things from now on)."""
        journal_records.start_step(self.store, self.id, idx)

    def add_moves(self, idx: int, moves: Sequence[RefMove]) -> None:
        """Journal the moves step ``idx`` is about to make."""
        journal_records.add_step_moves(self.store, self.id, idx, moves)

    def done(self, idx: int, result: Mapping[str, Any]) -> None:
        """Journal step ``idx`` done with ``result``."""
        journal_records.step_done(self.store, self.id, idx, result)

    def undone(self, idx: int) -> None:
        """Journal step ``idx`` undone (by ``--abort``)."""
        journal_records.step_undone(self.store, self.id, idx)

    @property
    def undoing(self) -> int | None:
        """The step an ``--abort`` is putting back (journaled before its first reverse move), or None."""
        value = self.info.args.get("undoing")
        return None if value is None else int(value)

    @property
    def aborting(self) -> bool:
        """Whether an ``--abort`` of this run began (only ``--abort`` may then resume it)."""
        return bool(self.info.args.get("aborting"))

    def mark_undoing(self, idx: int) -> None:
        """Journal that ``--abort`` is about to put back step ``idx``'s moves."""
        journal_records.update_journal_args(self.store, self.id, {"aborting": True, "undoing": idx})
        self._reload()

    def _reload(self) -> None:
        info = journal_records.journal_info(self.store, self.id)
        if info is not None:
            self.info = info

    def finish(self, state: str) -> None:
        """Close the journal as ``done`` or ``aborted``."""
        journal_records.finish_journal(self.store, self.id, state)

    # ------------------------------------------------------------------------------------------ gate cache

    def gate_result(self, repo: str, tree: str) -> tuple[bool, dict[str, Any]] | None:
        """The recorded gate result of ``tree`` in ``repo`` in this run, or None."""
        return journal_records.gate_result(self.store, self.id, repo, tree)

    def record_gate(self, repo: str, tree: str, passed: bool, detail: Mapping[str, Any]) -> None:
        """Keep the gate result of ``tree`` in ``repo`` for this run."""
        journal_records.record_gate_result(self.store, self.id, repo, tree, passed, detail)


# ------------------------------------------------------------------------------------------------ refs


def read_refs(
    paths: Mapping[str, Path], keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str | None]:
    """The real value of each (repository, location, ref): one ``for-each-ref`` and one ``ls-remote`` per
    repository at most."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for repo, location, ref in keys:
        wanted.setdefault((repo, location), set()).add(ref)
    out: dict[tuple[str, str, str], str | None] = {}
    for (repo, location), refs in wanted.items():
        path = str(paths[repo])
        if location == "local":
            text = proc.run(
                ["git", "-C", path, "for-each-ref", "--format=%(objectname) %(refname)", *sorted(refs)]
            )
        else:
            try:
                text = proc.run(["git", "-C", path, "ls-remote", "origin", *sorted(refs)], timeout=120)
            except CommandFailed as exc:
                raise UnavailableError(
                    f"cannot read origin of repository {repo!r} to check the journal: {exc.message}"
                ) from None
        found: dict[str, str] = {}
        for line in text.stdout.splitlines():
            sha, _, name = line.replace("\t", " ").partition(" ")
            found[name.strip()] = sha
        for ref in refs:
            out[(repo, location, ref)] = found.get(ref)
    return out


def _apply_local(path: Path, move: RefMove, message: str) -> None:
    if move.new is None:
        assert move.old is not None
        proc.run(["git", "-C", str(path), "update-ref", "-m", message, "-d", move.ref, move.old])
    else:
        old = move.old or "0" * len(move.new)
        proc.run(["git", "-C", str(path), "update-ref", "-m", message, move.ref, move.new, old])


def _apply_origin(path: Path, move: RefMove) -> None:
    spec = f"{move.new}:{move.ref}" if move.new else f":{move.ref}"
    try:
        proc.run(
            [
                "git",
                "-C",
                str(path),
                "push",
                "--quiet",
                "--porcelain",
                f"--force-with-lease={move.ref}:{move.old or ''}",
                "origin",
                spec,
            ],
            timeout=300,
        )
    except CommandFailed as exc:
        last = exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else "push failed"
        raise UnavailableError(
            f"could not update {move.describe()} ({_short(move.old)} -> {_short(move.new)}): {last}",
            hint="if origin moved meanwhile, `--abort` puts every ref back; else fix origin and `--continue`",
        ) from None


def _short(sha: str | None) -> str:
    return "absent" if sha is None else sha[:12]


def apply_moves(
    paths: Mapping[str, Path], moves: Sequence[RefMove], message: str, *, on_moved: Callable[[RefMove], None]
) -> None:
    """Make each move with a compare-and-swap; a move already in place is skipped, a ref found anywhere else
    is refused (someone moved it meanwhile)."""
    actual = read_refs(paths, (m.key for m in moves))
    for move in moves:
        value = actual[move.key]
        if value == move.new:
            continue
        if value != move.old:
            raise RefusedError(
                f"{move.describe()} is at {_short(value)}, not {_short(move.old)} as planned: "
                "someone moved it meanwhile; not overwriting it",
                hint="look at what moved it; `--abort` puts back what this run moved",
            )
        if move.location == "local":
            _apply_local(paths[move.repo], move, message)
        else:
            _apply_origin(paths[move.repo], move)
        actual[move.key] = move.new
        on_moved(move)


def inverse(move: RefMove) -> RefMove:
    """The move that undoes ``move``."""
    return RefMove(move.repo, move.ref, move.location, move.new, move.old)


# ------------------------------------------------------------------------------------------------ executor

Handler = Callable[["StepContext"], dict[str, Any]]


@dataclass
class StepContext:
    """What a step handler gets: the journal, its step, where each repository is, and the command."""

    journal: Journal
    step: StepRecord
    paths: Mapping[str, Path]
    command: str

    def moves(self, plan: Callable[[], Sequence[RefMove]]) -> tuple[RefMove, ...]:
        """The step's moves: those journaled by an earlier attempt, else ``plan()`` journaled now."""
        if self.step.moves:
            return self.step.moves
        planned = tuple(plan())
        if planned:
            self.journal.add_moves(self.step.idx, planned)
            self.step = self.journal.step(self.step.idx)
        kill_hook(self.step.idx, "journaled")
        return planned

    def move(self, plan: Callable[[], Sequence[RefMove]]) -> tuple[RefMove, ...]:
        """Journal (see :meth:`moves`) and make the step's moves; return them."""
        planned = self.moves(plan)
        apply_moves(self.paths, planned, f"coditect: {self.command}", on_moved=self._record)
        kill_hook(self.step.idx, "moved")
        return planned

    def _record(self, move: RefMove) -> None:
        info = self.journal.info
        ref = move.ref
        if move.location == "origin":
            ref = (
                f"refs/remotes/origin/{ref.removeprefix('refs/heads/')}"
                if ref.startswith("refs/heads/")
                else f"origin:{ref}"
            )
        self.journal.store.record_ref_move(
            self.journal.run_id, info.command, info.phase, move.repo, ref, move.old, move.new
        )


def check_refs(journal: Journal, paths: Mapping[str, Path]) -> set[tuple[int, int]]:
    """Check the journal against the real refs; return the moves in place; RefusedError when they disagree."""
    steps = journal.steps()
    keys = {m.key for s in steps for m in s.moves}
    found = reconcile(steps, read_refs(paths, keys) if keys else {}, journal.undoing)
    if found.problems:
        raise RefusedError(
            f"the journal of `coditect {journal.info.command}` ({journal.info.subject}) does not match the "
            "repositories, so it cannot be trusted:\n  " + "\n  ".join(found.problems),
            hint="someone moved these refs after the run stopped; put them back where the journal expects "
            "them (or resolve by hand), then `--continue` or `--abort`",
        )
    return found.applied


def execute(journal: Journal, handlers: Mapping[str, Handler], paths: Mapping[str, Path]) -> None:
    """Run every pending step in order, journaling each done with its result."""
    for step in journal.steps():
        if step.state != "pending":
            continue
        journal.start(step.idx)
        context = StepContext(journal, step, paths, journal.info.command)
        result = handlers[step.kind](context)
        journal.done(step.idx, result)
        kill_hook(step.idx, "done")


Undo = Callable[[StepRecord], None]


def abort(
    journal: Journal,
    paths: Mapping[str, Path],
    undo: Mapping[str, Undo],
    irreversible: Callable[[StepRecord], str | None],
) -> list[RefMove]:
    """Undo every step that started, newest first; return the moves put back (see the module docstring)."""
    applied = check_refs(journal, paths)
    steps = [s for s in journal.steps() if s.state == "done" or (s.state == "pending" and s.started)]
    blocking = [] if journal.aborting else [why for s in steps if (why := irreversible(s)) is not None]
    if blocking:
        raise RefusedError(
            "this run cannot be undone: " + "; ".join(blocking),
            hint=f"finish it with `coditect {journal.info.command} --continue`",
        )
    restored: list[RefMove] = []
    for step in reversed(steps):
        # Journaled before the first reverse move: a kill from here on leaves a journal an `--abort` resumes
        # (the reconciliation accepts this step's refs both where it moved them and put back).
        journal.mark_undoing(step.idx)
        kill_hook(step.idx, "undoing")
        handler = undo.get(step.kind)
        if handler is not None:
            handler(step)
        moves = [inverse(m) for i, m in enumerate(step.moves) if (step.idx, i) in applied]
        context = StepContext(journal, step, paths, f"{journal.info.command} --abort")
        back = len(step.moves) - len(moves)  # put back by an earlier, interrupted abort

        def moved(move: RefMove, step_idx: int = step.idx, record: Any = context._record) -> None:
            nonlocal back
            record(move)
            back += 1
            kill_hook(step_idx, f"back{back}")

        apply_moves(paths, list(reversed(moves)), f"coditect: {journal.info.command} --abort", on_moved=moved)
        restored += reversed(moves)
        journal.undone(step.idx)
        kill_hook(step.idx, "undone")
    journal.finish("aborted")
    return restored


def require_open(store: Store, phase: str, command: str) -> Journal:
    """The open journal of ``phase`` for ``command`` (``--continue`` / ``--abort``), else a UsageError that
    says how the last run of ``command`` ended."""
    found = Journal.find_open(store, phase)
    if found is None:
        raise UsageError(
            f"no interrupted `coditect {command}` in phase {phase}: nothing to continue or abort "
            f"({last_run_text(store, phase, command)})"
        )
    if found.info.command != command:
        raise UsageError(
            f"the interrupted run of phase {phase} is `coditect {found.info.command}` ({found.info.subject}), "
            f"not `coditect {command}`",
            hint=f"use `coditect {found.info.command} --continue` or `--abort`",
        )
    return found


def last_run_text(store: Store, phase: str, command: str) -> str:
    """How the last run of ``command`` in ``phase`` ended: ``the last one (checkpoint 2, journal 7) passed on
    ...``, ``... was aborted ...``, or ``it never ran``."""
    info = journal_records.last_journal(store, phase, command)
    if info is None:
        return f"`coditect {command}` never ran in this phase"
    status = journal_records.gating_status(store, info.id)
    if info.state == "aborted" or status == "aborted":
        how = "was aborted"
    elif status is not None:
        how = status
    else:
        how = "ended without a result"
    when = info.finished or info.started
    return f"the last one ({info.subject or command}, journal {info.id}) {how} on {when}"


def resume_command(info: JournalInfo) -> str:
    """The command that resumes an interrupted run: ``--abort`` once an abort began, else ``--continue``."""
    return f"coditect {info.command} {'--abort' if info.args.get('aborting') else '--continue'}"


def interrupted_text(info: JournalInfo, running: bool | None) -> tuple[str, str]:
    """What ``doctor`` and ``status`` say about the open journal ``info``: (message, hint)."""
    what = f"`coditect {info.command}` ({info.subject or 'no subject'}, journal {info.id}, started {info.started})"
    if running:
        return f"{what} is running", "let it finish"
    hint = f"resume it with `{resume_command(info)}`"
    if not info.args.get("aborting"):
        hint += f" (or `coditect {info.command} --abort` puts back every ref it moved)"
    return f"{what} was interrupted", hint


def interrupted_note(store: Store, phase: str, common_dir: Path) -> str | None:
    """A note about the open journal of ``phase`` (interrupted, or running now), or None."""
    from coditect_cli.state.lock import lock_held, lock_path

    journal_id = journal_records.open_journal_id(store, phase)
    info = None if journal_id is None else journal_records.journal_info(store, journal_id)
    if info is None:
        return None
    message, hint = interrupted_text(info, lock_held(lock_path(common_dir, phase)))
    return f"{message}: {hint}"
