"""SSH to a stream host, through the one subprocess runner (:func:`coditect_cli.adapters.proc.run`).

One multiplexed connection per host: every call goes through ``ControlMaster=auto`` on a control socket in
a private directory (``<git-common-dir>/coditect/ssh/``, or ``/tmp/coditect-ssh-<uid>/`` when that path is
too long for a Unix socket), kept open for a while after the last call (``ControlPersist``), so a command
costs one round trip, not a new handshake.

Never interactive and never trusting: ``BatchMode=yes`` (no password or passphrase prompt) and
``StrictHostKeyChecking=yes`` against coditect's own ``known_hosts`` (``<git-common-dir>/coditect/ssh/
known_hosts``) when it exists, else the user's. An unknown or changed host key is refused, never accepted.
``$CODITECT_SSH_CONFIG`` names an ssh config file (``ssh -F``) for identities and aliases.

The remote command is always ONE string, quoted here (:func:`shlex.join`): the remote shell parses it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.errors import CommandFailed, UnavailableError

CONFIG_ENV = "CODITECT_SSH_CONFIG"
"""Environment variable naming an ssh config file (``ssh -F``)."""

SSH_DIR = ("coditect", "ssh")
PERSIST = "600"  # seconds the master connection stays after its last client
_SOCKET_MAX = 100  # bytes of a Unix socket path (108 on Linux, less the suffix ssh adds while creating it)
_UNREACHABLE = 255  # ssh's own exit status: the connection failed


class HostKeyError(UnavailableError):
    """The host's key is unknown or changed: refused (never auto-accepted)."""


def ssh_dir(common: Path) -> Path:
    """coditect's private ssh directory of the project (known_hosts, control sockets)."""
    return common.joinpath(*SSH_DIR)


def known_hosts(common: Path) -> Path:
    """coditect's own known_hosts file (used instead of the user's when it exists)."""
    return ssh_dir(common) / "known_hosts"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


@dataclass
class SshHost:
    """One remote host; ``calls`` counts the ssh processes run (``opened``: those that had to connect)."""

    name: str
    destination: str
    port: int | None
    common: Path
    calls: int = 0
    opened: int = 0
    _control: Path | None = field(default=None, repr=False)

    @property
    def control_path(self) -> Path:
        """The control socket of this host's master connection."""
        if self._control is None:
            key = hashlib.sha256(f"{self.destination}:{self.port}:{self.common}".encode()).hexdigest()[:16]
            base = ssh_dir(self.common)
            if len(str(base / f"cm-{key}")) > _SOCKET_MAX:
                base = Path("/tmp") / f"coditect-ssh-{os.getuid()}"
            self._control = _private_dir(base) / f"cm-{key}"
        return self._control

    def options(self) -> list[str]:
        """The ssh options of every call (multiplexing, batch mode, strict host keys)."""
        opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        opts += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path}"]
        opts += ["-o", f"ControlPersist={PERSIST}", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]
        known = known_hosts(self.common)
        if known.is_file():
            opts += ["-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null"]
        config = os.environ.get(CONFIG_ENV)
        if config:
            opts = ["-F", config, *opts]
        if self.port is not None:
            opts += ["-p", str(self.port)]
        return opts

    def argv(self, command: str) -> list[str]:
        """The local command line running the remote ``command`` (one string) on this host."""
        return ["ssh", *self.options(), "--", self.destination, command]

    def connected(self) -> bool:
        """Whether a master connection is up (``ssh -O check``; no new connection is made)."""
        done = proc.run(["ssh", *self.options(), "-O", "check", "--", self.destination], check=False)
        return done.returncode == 0

    def run(
        self, argv: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> proc.Completed:
        """Run ``argv`` on the host (quoted into one command string) over the shared connection.

        Raises :class:`HostKeyError` for an unknown or changed host key and :class:`UnavailableError`
        (exit 5) when the host cannot be reached; with ``check``, :class:`CommandFailed` when the remote
        command fails.
        """
        return self.run_shell(shlex.join(argv), input=input, check=check, timeout=timeout)

    def run_shell(
        self, command: str, *, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> proc.Completed:
        """Run the shell command line ``command`` on the host (see :meth:`run`)."""
        if not self.control_path.exists():
            self.opened += 1
        self.calls += 1
        try:
            done = proc.run(self.argv(command), input=input, check=False, timeout=timeout)
        except CommandFailed as exc:  # timed out
            raise UnavailableError(f"host {self.name} ({self.destination}): {exc.stderr}") from None
        if done.returncode == _UNREACHABLE:
            raise self._connection_error(done.stderr)
        if check and done.returncode != 0:
            raise CommandFailed([f"ssh {self.name}", command], done.returncode, proc.redact(done.stderr))
        return done

    def _connection_error(self, stderr: str) -> UnavailableError:
        where = f"host {self.name} ({self.destination}{f' port {self.port}' if self.port else ''})"
        known = known_hosts(self.common)
        file = known if known.is_file() else Path("~/.ssh/known_hosts")
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "Host key for" in stderr:
            return HostKeyError(
                f"{where}: its host key CHANGED since it was recorded in {file}; refused (a changed key is "
                "never accepted: the host may be impersonated)",
                hint=f"if the host was really reinstalled, verify its new key out of band and replace its "
                f"line in {file}",
            )
        if "Host key verification failed" in stderr or "No ED25519 host key is known" in stderr:
            return HostKeyError(
                f"{where}: its host key is not in {file}; refused (host keys are never accepted blindly)",
                hint=f"verify the host's key and add it to {file} (e.g. `ssh-keyscan` compared with the key "
                "the host's administrator gives you)",
            )
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else "connection failed"
        return UnavailableError(f"{where} is unreachable: {reason}")
