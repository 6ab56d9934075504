"""The one place where coditect starts subprocesses.

It resolves the binary, builds the child's environment from an allow-list (:func:`child_env`: no
credential reaches git, tmux and through it the panes, or gates, unless passed on purpose), logs ``shlex.join(argv)`` at debug level (``--verbose``)
with secrets masked, and raises :class:`~coditect_cli.errors.CommandFailed` carrying the command and its
stderr. Missing programs raise :class:`~coditect_cli.errors.UnavailableError`.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from coditect_cli.errors import CommandFailed, UnavailableError

log = logging.getLogger("coditect.proc")

# Token shapes we never let through to a log line (GitHub classic/fine-grained, Anthropic, bearer headers,
# credentials embedded in URLs).
_SECRET_PATTERNS = (
    re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{16,})"),
    re.compile(r"\b(github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\b(sk-ant-[A-Za-z0-9_\-]{10,})"),
    re.compile(r"(?i)(authorization:\s*(?:bearer|token)\s+)(\S+)"),
    re.compile(r"(https?://[^/\s:@]+:)([^@\s/]+)(@)"),
)


def redact(text: str) -> str:
    """Mask anything that looks like a credential in ``text``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + "***" + (m.group(3) if m.lastindex == 3 else ""), text)
        else:
            text = pattern.sub("***", text)
    return text


ALLOWED_ENV = frozenset(
    {
        # who and where
        "HOME", "USER", "LOGNAME", "SHELL", "PATH", "TMPDIR", "TZ",
        # terminal and locale
        "TERM", "COLORTERM", "NO_COLOR", "LANG", "LANGUAGE",
        # sockets of the user's session (their values are paths, not secrets)
        "SSH_AUTH_SOCK", "SSH_AGENT_PID", "DISPLAY", "WAYLAND_DISPLAY", "TMUX", "TMUX_TMPDIR",
        "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
        "XDG_CONFIG_DIRS", "XDG_DATA_DIRS", "GH_CONFIG_DIR", "GH_HOST",
        "EDITOR", "VISUAL",
        # network: proxies and certificate stores
        "http_proxy", "https_proxy", "no_proxy", "all_proxy",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "LD_LIBRARY_PATH", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
        # toolchains gates and agents are built with
        "PYTHONPATH", "PYTHONHOME", "PYTHONIOENCODING", "PYTHONUTF8", "VIRTUAL_ENV", "CONDA_PREFIX",
        "PYENV_ROOT", "JAVA_HOME", "GOPATH", "GOROOT", "GOCACHE", "GOMODCACHE", "GOFLAGS", "CARGO_HOME",
        "RUSTUP_HOME", "NVM_DIR", "NODE_PATH", "GEM_HOME", "GEM_PATH",
    }
)  # fmt: skip
"""Variables every child process gets from coditect's environment (when set)."""

ALLOWED_PREFIXES = ("LC_", "GIT_", "CODITECT_")
"""Families of variables every child gets, except names that look like credentials (:data:`SECRET_NAME`)."""

SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE_?KEY|AUTH(?!OR)|COOKIE|SESSION", re.I
)
"""Names of variables never passed on unless named on purpose (``pass_env``)."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _allowed(name: str, value: str) -> bool:
    if not _ENV_NAME.match(name) or redact(value) != value:
        return False
    if name in ALLOWED_ENV:
        return True
    return name.startswith(ALLOWED_PREFIXES) and not SECRET_NAME.search(name)


def child_env(
    extra: Mapping[str, str] | None = None,
    *,
    pass_env: Iterable[str] = (),
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a child process: the allow-listed part of ``source`` (default: ``os.environ``),
    then the variables named in ``pass_env`` (taken from ``source`` on purpose, whatever they hold), then
    ``extra`` (the caller's own variables win)."""
    environ = os.environ if source is None else source
    env = {k: v for k, v in environ.items() if _allowed(k, v)}
    for name in pass_env:
        if name in environ:
            env[name] = environ[name]
    if extra:
        env.update(extra)
    return env


@dataclass(frozen=True)
class Completed:
    """The outcome of one command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


_which_cache: dict[str, str] = {}


def which(program: str) -> str:
    """Resolve ``program`` on PATH once per process, or raise UnavailableError naming it."""
    found = _which_cache.get(program)
    if found is None:
        found = shutil.which(program)
        if found is None:
            raise UnavailableError(f"`{program}` is not installed or not on PATH")
        _which_cache[program] = found
    return found


# git must never prompt, page or localise: its output is parsed.
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "LC_ALL": "C",
    "LANG": "C",
    "GIT_OPTIONAL_LOCKS": "0",
}


_STARTED = [0]


def started() -> int:
    """How many processes :func:`run` has started in this process so far (a caller deciding whether work
    waits on processes, and is worth threads, compares two readings)."""
    return _STARTED[0]


def run(
    argv: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float | None = None,
    tied: bool = False,
    pass_env: Iterable[str] = (),
) -> Completed:
    """Run ``argv`` and return its output; raise CommandFailed on a non-zero exit when ``check``.

    The child's environment is :func:`child_env`: the allow-listed part of coditect's, ``env`` on top, and
    the variables ``pass_env`` names (passed on purpose, e.g. a manifest's ``pass_env``).

    ``tied``: run it in a process group of its own, under :mod:`coditect_cli.adapters.tether`, which kills
    that whole group when this process dies (even by SIGKILL), when the command ends (what it left running)
    and on a timeout. For commands coditect does not control (gates): none of their processes outlives it.
    """
    args = [str(a) for a in argv]
    program = args[0]
    _STARTED[0] += 1  # under the GIL: no lock needed for a counter only compared, never exact
    resolved = which(program) if os.sep not in program else program
    # No child inherits coditect's environment as it is: the allow-list, what the caller sets, and the names
    # a manifest passes on purpose (credentials stay in coditect's own process, where the forge client reads them).
    full_env = child_env({**(_GIT_ENV if program == "git" else {}), **(env or {})}, pass_env=pass_env)
    log.debug("$ %s%s", redact(shlex.join(args)), f"  (in {cwd})" if cwd else "")
    command = [resolved, *args[1:]]
    if tied:
        command = [
            sys.executable,
            "-S",
            str(Path(__file__).with_name("tether.py")),
            str(os.getpid()),
            "--",
            *command,
        ]
    try:
        if tied:
            proc = _run_tied(command, cwd, full_env, input, timeout)
        else:
            proc = subprocess.run(
                command,
                cwd=cwd,
                env=full_env,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
    except FileNotFoundError as exc:
        raise UnavailableError(f"cannot run `{program}`: {exc.strerror}") from exc
    except NotADirectoryError as exc:
        raise UnavailableError(f"cannot run `{program}` in {cwd}: not a directory") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(args, -1, f"timed out after {timeout}s", cwd=str(cwd) if cwd else None) from exc
    done = Completed(tuple(args), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, redact(proc.stderr), cwd=str(cwd) if cwd else None)
    return done


def _run_tied(
    command: list[str], cwd: str | Path | None, env: dict[str, str], input: str | None, timeout: float | None
) -> subprocess.CompletedProcess[str]:
    """Run the tether: on a timeout it is asked (SIGTERM) to kill the command's group, then reaped."""
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as tether:
        try:
            out, err = tether.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            tether.terminate()
            tether.communicate()
            raise
        return subprocess.CompletedProcess(command, tether.returncode, out, err)
