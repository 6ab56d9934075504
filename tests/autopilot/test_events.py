"""``coditect events serve``: GitHub webhook deliveries verified (HMAC), kept once, turned into reactions
while their condition holds; unsigned, mis-signed, malformed and foreign deliveries refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gating_helpers import build_tiny, git

from coditect_cli.errors import UsageError
from coditect_cli.project import Project
from coditect_cli.services.events import Receiver, receiver_for, run_in_thread, serve, signature

SECRET = b"it is a secret"


@pytest.fixture
def tiny(tmp_path: Path, isolated_git: Path):  # type: ignore[no-untyped-def]
    return build_tiny(tmp_path, 2, open_prs=False)


@pytest.fixture
def url(tiny) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = serve(Receiver(Project(tiny.root), SECRET, {"acme/app": "app"}), "127.0.0.1", 0)
    run_in_thread(server)
    host, port = server.server_address[:2]
    yield f"http://{host!s}:{port}/hook"
    server.shutdown()
    server.server_close()


def post(
    url: str,
    event: str,
    payload: object,
    *,
    delivery: str = "d-1",
    sign: bytes | None = SECRET,
    raw: bytes | None = None,
) -> tuple[int, dict[str, object]]:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
    if sign is not None:
        headers["X-Hub-Signature-256"] = signature(sign, body)
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def check_run(sha: str, branch: str, repo: str = "acme/app") -> dict[str, object]:
    return {
        "action": "completed",
        "repository": {"full_name": repo},
        "check_run": {
            "name": "unit-tests",
            "head_sha": sha,
            "conclusion": "failure",
            "details_url": "https://ci.example/run/42",
            "output": {"title": "2 failed", "summary": "test_login failed: expected 200, got 500"},
            "pull_requests": [{"head": {"ref": branch}}],
        },
    }


def stored(root: Path) -> list[tuple[str, str]]:
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.autopilot_records import forge_events
    from coditect_cli.state.store import Store

    with Store.open(project_common_dir(Project(root))) as store:
        return [(e.delivery, e.kind) for e in forge_events(store)]


def test_a_signed_delivery_is_kept_once_and_a_replay_changes_nothing(tiny, url: str) -> None:  # type: ignore[no-untyped-def]
    head = git(tiny.worktree(1), "rev-parse", "HEAD")
    assert post(url, "check_run", check_run(head, "feature/phase-1/s1/t1")) == (
        202,
        {"message": "check_run stored", "stored": True},
    )
    code, answer = post(url, "check_run", check_run(head, "feature/phase-1/s1/t1"))
    assert code == 200 and "duplicate delivery d-1" in str(answer["message"])
    assert stored(tiny.root) == [("d-1", "ci_failed")]


@pytest.mark.parametrize(
    ("sign", "raw", "code", "words"),
    [
        (None, None, 401, "unsigned request refused"),
        (b"not the secret", None, 401, "bad signature"),
        (SECRET, b"{not json", 400, "not JSON"),
        (SECRET, b"[1, 2]", 400, "not a JSON object"),
    ],
    ids=["unsigned", "wrong-secret", "malformed", "not-an-object"],
)
def test_bad_deliveries_are_refused_and_nothing_is_kept(  # type: ignore[no-untyped-def]
    tiny, url: str, sign: bytes | None, raw: bytes | None, code: int, words: str
) -> None:
    got, answer = post(url, "check_run", check_run("abc", "x"), sign=sign, raw=raw)
    assert got == code and words in str(answer["message"])
    assert stored(tiny.root) == []


def test_a_delivery_for_an_unknown_repository_is_refused(tiny, url: str) -> None:  # type: ignore[no-untyped-def]
    code, answer = post(url, "check_run", check_run("abc", "x", repo="someone/else"))
    assert code == 422 and "unknown repository 'someone/else'" in str(answer["message"])
    assert post(url, "ping", {"zen": "hi"}, delivery="p") == (200, {"message": "pong", "stored": False})


def test_events_serve_refuses_to_start_without_a_secret(tiny) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match="no webhook secret"):
        receiver_for(Project(tiny.root), "phase-1", "")


def test_a_kept_event_becomes_a_reaction_while_its_commit_is_the_head(tiny, url: str) -> None:  # type: ignore[no-untyped-def]
    from coditect_cli.services.autopilot import conditions_from
    from coditect_cli.services.facts import gather
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.store import Store

    head = git(tiny.worktree(1), "rev-parse", "HEAD")
    post(url, "check_run", check_run(head, "feature/phase-1/s1/t1"), delivery="d-7")
    review = {
        "action": "created",
        "repository": {"full_name": "acme/app"},
        "pull_request": {"number": 3, "head": {"ref": "feature/phase-1/s2/t2", "sha": "0" * 40}},
        "comment": {
            "id": 9,
            "user": {"login": "carol"},
            "body": "rename this",
            "path": "s2/work.txt",
            "line": 1,
            "commit_id": git(tiny.worktree(2), "rev-parse", "HEAD"),
        },
    }
    post(url, "pull_request_review_comment", review, delivery="d-8")
    project = Project(tiny.root)

    def conditions() -> dict[str, str]:
        facts = gather(project, "phase-1", with_prs=False, with_conflicts=False)
        with Store.open(project_common_dir(project)) as store:
            return {c.key: c.text for c in conditions_from(facts, store)}

    # Keyed as the same event is when polled (its commit and name; its comment id): seen both ways, told once.
    check_key, comment_key = f"ci_failed:app:{head[:12]}:unit-tests", "review_comment:app:3:9"
    found = conditions()
    assert set(found) == {check_key, comment_key}
    assert "test_login failed" in found[check_key] and "2 failed" in found[check_key]
    assert "https://ci.example/run/42" in found[check_key]
    assert "@carol commented on s2/work.txt:1" in found[comment_key]
    tiny.commit(
        1, "s1/work.txt", "fixed\n", "fix: the test"
    )  # the stream moved on: the failure was about an older commit
    assert set(conditions()) == {comment_key}
