"""forked.beside: work in a fork of this process, its result and what its memos learned brought back."""

from __future__ import annotations

import os
import threading

import pytest

from coditect_cli.adapters import memo
from coditect_cli.adapters.forked import beside

_LEARNT: memo.Memo[str, int] = memo.Memo(8)


def _work(n: int) -> tuple[int, int]:
    _LEARNT.put(f"square-{n}", n * n)
    return os.getpid(), n * n


class Refused(Exception):
    def __init__(self, what: str, *, code: int) -> None:  # keyword fields: does not survive pickling
        super().__init__(f"{what} refused")
        self.code = code


def _fails(pids: list[int]) -> None:
    pids.append(os.getpid())
    raise Refused("this", code=7)


def test_the_result_comes_from_a_fork_with_what_it_learned() -> None:
    pid, square = beside(_work, 12).result()
    assert square == 144 and pid != os.getpid()
    assert _LEARNT.get("square-12") == 144  # learned there, known here


def test_a_failure_fails_here_as_it_would_have() -> None:
    pids: list[int] = []
    work = beside(_fails, pids)
    with pytest.raises(Refused) as caught:
        work.result()
    assert caught.value.code == 7
    assert pids == [os.getpid()]  # the fork's attempt is not in this process's list; this one's is


def test_with_another_thread_running_it_is_a_thread() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        pid, square = beside(_work, 3).result()
    finally:
        stop.set()
        other.join()
    assert (pid, square) == (os.getpid(), 9)


def test_discard_waits_for_the_fork() -> None:
    work = beside(_work, 5)
    work.discard()
    with pytest.raises(ChildProcessError):
        os.waitpid(work._pid, os.WNOHANG)  # already waited for: no zombie left
