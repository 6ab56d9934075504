"""The warm server keeps what its workers learned: a merge or a history one ``coditect status`` computed is
not computed again by the next one while the commits are the same, and is when a branch moves."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from daykit import PHASE1, build, commit

from coditect_cli.project import Project
from coditect_cli.services import prs
from tests.helpers import retry_until, run_cli, served, server_pid


@pytest.fixture(scope="module")
def root(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two streams with a commit each and a PR each (merges to predict)."""
    root = build(tmp_path_factory.mktemp("warm"))
    commit(root, "infra", "infra", "opentofu/modules/networking/main.tf", "\n# cache\n", "feat(infra): cache")
    commit(root, "backend", "backend", "src/api/v1/orgs.py", "\n# orgs\n", "feat(backend): orgs")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        prs.open_prs(Project(root), PHASE1, "infra")
        prs.open_prs(Project(root), PHASE1, "backend")
    return root


def test_the_server_keeps_what_its_workers_learned(
    root: Path, served_env: dict[str, str], tmp_path: Path
) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "git.log"
    real = shutil.which("git")
    (shims / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec {real} "$@"\n')
    (shims / "git").chmod(0o755)
    env = {**served_env, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}"}
    args = ["status", "--json", "--verbose"]

    def merges_of_one_run() -> int:
        log.write_text("")
        done = run_cli(args, root, env=env)
        assert done.code == 0 and served(done), done.stderr
        return sum(
            1
            for line in log.read_text().splitlines()
            if line.startswith(("merge-tree", "-C")) and " merge-tree " in f" {line} "
        )

    alone = run_cli(args, root, env=env)  # no server yet: in-process; it starts one
    assert alone.code == 0 and not served(alone)
    server_pid(served_env)
    assert merges_of_one_run() > 0  # the first worker knows nothing yet
    # What that worker learned reaches the server as it ends (just after its answer): then no merge is
    # computed again.
    assert retry_until(merges_of_one_run, lambda n: n == 0) == 0
    # A branch that moves is merged afresh.
    commit(root, "infra", "infra", "opentofu/modules/networking/main.tf", "\n# more\n", "feat(infra): more")
    assert merges_of_one_run() > 0
