"""Forge events for the autopilot: ``coditect events serve``, a GitHub webhook receiver.

A delivery is accepted only when its ``X-Hub-Signature-256`` is the HMAC-SHA256 of the body under the shared
secret (compared in constant time); unsigned or badly signed requests are refused (401) before the body is
read as JSON. Each delivery id is kept once: a replay is answered 200 ``duplicate`` and changes nothing. The
events the autopilot reacts to (a failing check run or commit status, a review asking for changes, a review
comment with its file and line) are stored in the state store (``forge_events``); the autopilot reads them in
its next pass and turns those whose condition still holds into reactions (:func:`condition_of`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.autopilot import Condition
from coditect_cli.domain.autopilot_config import EventKind
from coditect_cli.errors import UsageError

if TYPE_CHECKING:
    from coditect_cli.project import Project
    from coditect_cli.services.facts import PhaseFacts
    from coditect_cli.state.autopilot_records import ForgeEvent

MAX_BODY = 5 * 2**20  # GitHub caps webhook payloads at 25 MB; the events read here are far smaller
SECRET_ENV = "CODITECT_WEBHOOK_SECRET"
_FAILED = {"failure", "timed_out", "cancelled", "action_required", "error"}


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signed(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the right signature of ``body`` (constant-time comparison)."""
    return bool(header) and hmac.compare_digest(signature(secret, body), str(header))


@dataclass(frozen=True)
class Verdict:
    """The answer to one delivery: HTTP status and a short message."""

    status: int
    message: str
    stored: bool = False


def extract(kind: str, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The part of a GitHub event the autopilot reacts to, or None for an event it ignores."""
    if kind == "check_run":
        run = payload.get("check_run") or {}
        if payload.get("action") != "completed" or run.get("conclusion") not in _FAILED:
            return None
        output = run.get("output") or {}
        return {
            "kind": "ci_failed",
            "name": str(run.get("name", "check")),
            "sha": str(run.get("head_sha", "")),
            "summary": " - ".join(str(output[k]).strip() for k in ("title", "summary") if output.get(k)),
            "text": str(output.get("text") or "")[-2000:],
            "url": str(run.get("details_url") or run.get("html_url") or ""),
            "branches": [str(pr.get("head", {}).get("ref", "")) for pr in run.get("pull_requests") or []],
        }
    if kind == "status":
        if payload.get("state") not in _FAILED:
            return None
        return {
            "kind": "ci_failed",
            "name": str(payload.get("context", "status")).removeprefix("coditect/"),
            "sha": str(payload.get("sha", "")),
            "summary": str(payload.get("description") or ""),
            "text": "",
            "url": str(payload.get("target_url") or ""),
            "branches": [str(b.get("name", "")) for b in payload.get("branches") or []],
        }
    pr = payload.get("pull_request") or {}
    head = pr.get("head") or {}
    if kind == "pull_request_review":
        review = payload.get("review") or {}
        if (
            payload.get("action") != "submitted"
            or str(review.get("state", "")).lower() != "changes_requested"
        ):
            return None
        return {
            "kind": "changes_requested",
            "id": review.get("id"),
            "who": str((review.get("user") or {}).get("login") or "a reviewer"),
            "body": str(review.get("body") or ""),
            "sha": str(review.get("commit_id") or head.get("sha", "")),
            "number": pr.get("number"),
            "url": str(review.get("html_url") or pr.get("html_url") or ""),
            "branches": [str(head.get("ref", ""))],
        }
    if kind == "pull_request_review_comment":
        comment = payload.get("comment") or {}
        if payload.get("action") != "created":
            return None
        return {
            "kind": "review_comment",
            "id": comment.get("id"),
            "who": str((comment.get("user") or {}).get("login") or "a reviewer"),
            "body": str(comment.get("body") or ""),
            "path": str(comment.get("path") or ""),
            "line": comment.get("line") or comment.get("original_line"),
            "sha": str(comment.get("commit_id") or head.get("sha", "")),
            "number": pr.get("number"),
            "url": str(comment.get("html_url") or ""),
            "branches": [str(head.get("ref", ""))],
        }
    return None


class Receiver:
    """Judges and stores deliveries for one project (the part of the server that is not HTTP)."""

    def __init__(self, project: Project, secret: bytes, repos: Mapping[str, str]) -> None:
        self.project = project
        self.secret = secret
        self.repos = {slug.lower(): repo for slug, repo in repos.items()}  # owner/name -> repository id

    def handle(self, headers: Mapping[str, str], body: bytes) -> Verdict:
        """Verify, de-duplicate and store one delivery."""
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state.autopilot_records import add_forge_event
        from coditect_cli.state.store import Store

        sig = headers.get("x-hub-signature-256")
        if not sig:
            return Verdict(401, "unsigned request refused: X-Hub-Signature-256 is missing")
        if not signed(self.secret, body, sig):
            return Verdict(401, "bad signature: X-Hub-Signature-256 does not match the body and the secret")
        delivery = headers.get("x-github-delivery", "").strip()
        kind = headers.get("x-github-event", "").strip()
        if not delivery or not kind:
            return Verdict(400, "X-GitHub-Delivery and X-GitHub-Event are required")
        if kind == "ping":
            return Verdict(200, "pong")
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return Verdict(400, "the body is not JSON")
        if not isinstance(payload, dict):
            return Verdict(400, "the body is not a JSON object")
        full = str((payload.get("repository") or {}).get("full_name") or "").lower()
        repo = self.repos.get(full)
        if repo is None:
            return Verdict(422, f"unknown repository {full or '(none)'!r}: not a repository of this phase")
        part = extract(kind, payload)
        if part is None:
            return Verdict(202, f"{kind} ignored (nothing to react to)")
        with Store.open(project_common_dir(self.project)) as store:
            fresh = add_forge_event(store, delivery, "github-webhook", repo, str(part["kind"]), part)
        if not fresh:
            return Verdict(200, f"duplicate delivery {delivery}: already received")
        return Verdict(202, f"{kind} stored", stored=True)


def serve(receiver: Receiver, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server answering webhook deliveries at any path with ``receiver`` (call ``serve_forever``)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "coditect-events"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, verdict: Verdict) -> None:
            data = json.dumps({"message": verdict.message, "stored": verdict.stored}).encode()
            self.send_response(verdict.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self._answer(Verdict(413, f"the body must be between 0 and {MAX_BODY} bytes"))
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._answer(receiver.handle(headers, body))

        def do_GET(self) -> None:
            self._answer(Verdict(405, "deliveries are POSTed"))

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def receiver_for(project: Project, phase: str | None, secret: str) -> Receiver:
    """A receiver for the repositories of ``phase`` whose origin is on GitHub (by ``owner/name``)."""
    from coditect_cli.forge.select import parse_remote
    from coditect_cli.services.manifest import load_valid

    if not secret:
        raise UsageError(
            f"no webhook secret: set {SECRET_ENV} (the secret configured on the GitHub webhook)",
            hint="unsigned deliveries are never accepted",
        )
    manifest = load_valid(project, phase, with_repos=False).loaded.manifest
    repos: dict[str, str] = {}
    for repo in manifest.repositories:
        url = _origin_url((project.root / repo.path).resolve())
        remote = parse_remote(url)
        if remote is not None:
            repos[remote.slug] = repo.id
    return Receiver(project, secret.encode(), repos)


def _origin_url(path: Path) -> str | None:
    """origin's URL as configured (not rewritten by ``url.<base>.insteadOf``: GitHub's name is wanted)."""
    from coditect_cli.adapters.git import origin_url

    return origin_url(path)


def run_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Serve in a daemon thread (tests, the autopilot's built-in receiver)."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------------------------------------ the conditions
# One spelling per event, whether it was polled or delivered by a webhook: the same key (so a review seen both
# ways is one event, told once) and the same evidence.


def check_kind(name: str, gates: Collection[str]) -> EventKind:
    """What a failing check is: a checkpoint leaving the PR out, one of the stream's gates, or CI."""
    if name.startswith("checkpoint-"):
        return "pr_left_out"
    return "gate_failed" if name in gates else "ci_failed"


def check_condition(
    stream: str,
    repo: str,
    branch: str,
    head: str,
    name: str,
    kind: EventKind,
    *,
    summary: str = "",
    log: str = "",
    url: str | None = None,
) -> Condition:
    """A failing check (gate, CI check run, commit status) on the branch's head: its name, summary, log
    excerpt and URL. Keyed by head and name: the same failure on the same commit is one event."""
    what = {
        "pr_left_out": f"your PR was left out of {name.replace('-', ' ')}",
        "gate_failed": f"the gate `{name}` fails",
    }.get(kind, f"the CI check `{name}` fails")
    return Condition(
        f"{kind}:{repo}:{head[:12]}:{name}",
        kind,
        stream,
        f"coditect autopilot: {what} on {branch} at {head[:10]} ({repo})."
        + (f" Summary: {_clip(summary, 500)}" if summary else "")
        + (f" Log: {_clip(log, 1500, tail=True)}" if log else "")
        + (f" Details: {url}" if url else "")
        + " Fix it, commit and push.",
    )


def review_condition(
    stream: str,
    repo: str,
    number: int | None,
    reviewer: str,
    body: str,
    *,
    event: str,
    url: str | None = None,
) -> Condition:
    """A review asking for changes; ``event`` names it (GitHub: ``review-<id>``)."""
    return Condition(
        f"changes_requested:{repo}:{number}:{event}",
        "changes_requested",
        stream,
        f"coditect autopilot: {reviewer} requested changes on your PR #{number} ({repo}): "
        f"{body or '(no text)'}" + (f" {url}" if url else "") + " Address it, commit and push.",
    )


def comment_condition(
    stream: str,
    repo: str,
    number: int | None,
    author: str,
    body: str,
    *,
    comment_id: object,
    path: str | None = None,
    line: object = None,
    url: str | None = None,
) -> Condition:
    """A review comment, with the file and line it is on."""
    where = (f" on {path}" + (f":{line}" if line else "")) if path else ""
    return Condition(
        f"review_comment:{repo}:{number}:{comment_id}",
        "review_comment",
        stream,
        f"coditect autopilot: {author} commented{where} on your PR #{number} ({repo}): {body}"
        + (f" {url}" if url else "")
        + " Answer it in code, commit and push.",
    )


def _clip(text: str, limit: int, *, tail: bool = False) -> str:
    """``text`` on one line, at most ``limit`` characters (its end when ``tail``: where a log says why)."""
    flat = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    if len(flat) <= limit:
        return flat
    return "..." + flat[-limit:] if tail else flat[:limit] + "..."


def condition_of(facts: PhaseFacts, event: ForgeEvent) -> Condition | None:
    """The reaction an event asks for, while it still holds: its commit is the stream branch's head."""
    data = event.payload
    for branch in facts.branches.values():
        if event.repo != branch.pair.repo.id or branch.head is None:
            continue
        if branch.pair.branch not in data.get("branches", []) and data.get("sha") != branch.head:
            continue
        if data.get("sha") and data["sha"] != branch.head:
            return None  # the stream pushed since: the event is about an older commit
        stream, repo = branch.pair.stream.id, branch.pair.repo.id
        kind = str(data.get("kind"))
        number = data.get("number")
        if kind == "ci_failed":
            name = str(data.get("name") or "check")
            return check_condition(
                stream,
                repo,
                branch.pair.branch,
                branch.head,
                name,
                check_kind(name, {g.name for g in branch.pair.stream.gates}),
                summary=str(data.get("summary") or ""),
                log=str(data.get("text") or ""),
                url=str(data.get("url") or "") or None,
            )
        if kind == "changes_requested":
            return review_condition(
                stream,
                repo,
                number,
                f"@{str(data.get('who') or 'a reviewer').lstrip('@')}",
                str(data.get("body") or ""),
                event=f"review-{data.get('id')}" if data.get("id") else f"webhook-{event.delivery}",
                url=str(data.get("url") or "") or None,
            )
        if kind == "review_comment":
            return comment_condition(
                stream,
                repo,
                number,
                f"@{str(data.get('who') or 'a reviewer').lstrip('@')}",
                str(data.get("body") or ""),
                comment_id=data.get("id") or f"webhook-{event.delivery}",
                path=str(data.get("path") or "") or None,
                line=data.get("line"),
                url=str(data.get("url") or "") or None,
            )
        return None
    return None
