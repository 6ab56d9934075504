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
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.autopilot import Condition
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
            "summary": str(output.get("summary") or output.get("title") or ""),
            "text": str(output.get("text") or "")[-2000:],
            "url": str(run.get("details_url") or run.get("html_url") or ""),
            "branches": [str(pr.get("head", {}).get("ref", "")) for pr in run.get("pull_requests") or []],
        }
    if kind == "status":
        if payload.get("state") not in _FAILED:
            return None
        return {
            "kind": "ci_failed",
            "name": str(payload.get("context", "status")),
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
    from coditect_cli.adapters.git import Git

    done = Git(path).run("remote", "get-url", "origin", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def run_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Serve in a daemon thread (tests, the autopilot's built-in receiver)."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


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
        stream = branch.pair.stream.id
        url = f" {data['url']}" if data.get("url") else ""
        kind = str(data.get("kind"))
        if kind == "ci_failed":
            detail = " ".join(x for x in (data.get("summary", ""), data.get("text", "")) if x)[:1500]
            text = (
                f"coditect autopilot: the CI check `{data.get('name')}` fails on {branch.pair.branch} at "
                f"{branch.head[:10]}: {detail or '(no summary)'}{url} Fix it, commit and push."
            )
        elif kind == "changes_requested":
            text = (
                f"coditect autopilot: {data.get('who')} requested changes on your PR #{data.get('number')}: "
                f"{data.get('body') or '(no text)'}{url} Address it, commit and push."
            )
        elif kind == "review_comment":
            where = (
                f" on {data.get('path')}" + (f":{data.get('line')}" if data.get("line") else "")
                if data.get("path")
                else ""
            )
            text = (
                f"coditect autopilot: {data.get('who')} commented{where} on your PR #{data.get('number')}: "
                f"{data.get('body')}{url} Answer it in code, commit and push."
            )
        else:
            return None
        return Condition(f"{kind}:{event.repo}:webhook:{event.delivery}", kind, stream, text)  # type: ignore[arg-type]
    return None
