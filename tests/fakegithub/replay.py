"""A server that replays GitHub exchanges recorded against the real api.github.com (PyGithub's ReplayData).

Each ``*.txt`` file of PyGithub's ``tests/ReplayData`` holds exchanges of eleven lines: scheme, verb, host,
port, URL, request headers, request body, status, response headers (a Python list of pairs), response body, and
a blank line. :class:`ReplayGitHub` loads chosen exchanges and answers a request with the recorded status,
headers and body of the exchange with the same verb and path (the query is not compared: coditect asks for
``per_page=100`` where PyGithub's tests did not), in recorded order, the last one repeating. Absolute URLs in
bodies and ``Link`` headers point back at this server. A request nothing was recorded for is answered 404, as
GitHub answers an unknown object, and listed in :attr:`ReplayGitHub.unmatched` so a test can require that only
the requests it expects were unrecorded.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .server import API_PREFIX, GRAPHQL_PATH

_DROPPED = {"content-length", "transfer-encoding", "content-encoding", "connection", "status"}


@dataclass
class Exchange:
    """One recorded request and GitHub's answer."""

    verb: str
    path: str
    query: str
    request_body: str
    status: int
    headers: list[tuple[str, str]]
    body: str

    def json(self) -> Any:
        """The recorded answer's body, parsed."""
        return json.loads(self.body) if self.body else None


def read_exchanges(path: Path) -> list[Exchange]:
    """Every exchange recorded in one ReplayData file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out: list[Exchange] = []
    i = 0
    while i + 9 < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        _scheme, verb, _host, _port, url, _rh, request_body, status, headers, body = lines[i : i + 10]
        route, _, query = url.partition("?")
        pairs = [(str(k), str(v)) for k, v in ast.literal_eval(headers)]
        out.append(Exchange(verb, route, query, request_body, int(status), pairs, body))
        i += 11
    return out


class _Quiet(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class ReplayGitHub:
    """Serves recorded exchanges on 127.0.0.1 (``base_url`` is a GitHub Enterprise style API base)."""

    def __init__(self, replay_dir: Path) -> None:
        self.replay_dir = replay_dir
        self._answers: dict[tuple[str, str], list[Exchange]] = {}
        self._served: dict[tuple[str, str], int] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.unmatched: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: Any = None

    def load(
        self,
        name: str,
        *,
        alias: dict[str, str] | None = None,
        where: Callable[[Exchange], bool] | None = None,
        edit: Callable[[Exchange], None] | None = None,
    ) -> list[Exchange]:
        """Serve the exchanges of ``name`` (a ReplayData file) that ``where`` keeps; ``alias`` maps a path coditect
        asks for to the recorded path that answers it; ``edit`` may change an exchange first. Returns them."""
        exchanges = [e for e in read_exchanges(self.replay_dir / name) if where is None or where(e)]
        if not exchanges:
            raise AssertionError(f"{name}: no recorded exchange matches")
        reverse = {recorded: asked for asked, recorded in (alias or {}).items()}
        for exchange in exchanges:
            if edit is not None:
                edit(exchange)
            path = reverse.get(exchange.path, exchange.path)
            self._answers.setdefault((exchange.verb, path), []).append(exchange)
        return exchanges

    def __enter__(self) -> ReplayGitHub:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        """The REST API base: ``http://127.0.0.1:PORT/api/v3`` (GraphQL at ``/api/graphql``)."""
        return self.root_url + API_PREFIX

    def _rewrite(self, text: str) -> str:
        return text.replace("https://api.github.com", self.base_url)

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        path = "/graphql" if request.path == GRAPHQL_PATH else request.path.removeprefix(API_PREFIX)
        key = (request.method, path)
        with self._lock:
            answers = self._answers.get(key)
            if not answers:
                self.unmatched.append(key)
                self.requests.append((request.method, path, 404))
                response = Response(
                    json.dumps({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
                    status=404,
                    content_type="application/json; charset=utf-8",
                )
                return response(environ, start_response)
            index = min(self._served.get(key, 0), len(answers) - 1)
            self._served[key] = index + 1
            exchange = answers[index]
            self.requests.append((request.method, path, exchange.status))
        response = Response(self._rewrite(exchange.body), status=exchange.status)
        for name, value in exchange.headers:
            if name.lower() not in _DROPPED:
                response.headers[name] = self._rewrite(value)
        return response(environ, start_response)
