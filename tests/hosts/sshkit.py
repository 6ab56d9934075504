"""Real SSH hosts for the tests: sshd on 127.0.0.1 (one per "host", each on its own port with its own host
key), a generated client key pair, an ssh config naming it, and the hosts' keys for a known_hosts file.

Each host is the local machine under another port; its streams' files live in its own work directory and
its sessions on its own tmux server (the socket name derives from the work directory). Imported as
``sshkit`` (tests/hosts is on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def keygen(path: Path) -> None:
    """Generate an ed25519 key pair at ``path`` (the public key in ``<path>.pub``)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "coditect-test", "-f", str(path)], check=True
    )


@dataclass
class Sshd:
    """One sshd listening on 127.0.0.1:``port`` with the host key ``key``."""

    name: str
    base: Path
    port: int
    key: Path
    authorized: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def public_key(self) -> str:
        """The host key as a known_hosts entry."""
        kind, data = Path(f"{self.key}.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {data}"

    def start(self) -> None:
        config = self.base / f"sshd_{self.name}.conf"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.key}\n"
            f"AuthorizedKeysFile {self.authorized}\nPidFile {self.base / f'sshd_{self.name}.pid'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nMaxSessions 50\nMaxStartups 50\n"
            # bash started by sshd reads the user's ~/.bashrc even for a command (Debian's build), and this
            # machine's user is not the hosts' test user: a shell level above 1 keeps the command from it.
            "SetEnv SHLVL=1\n"
        )
        if os.getuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.base / f"sshd_{self.name}.log").open("ab"),
        )
        deadline = time.monotonic() + 20
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"sshd {self.name} did not start: {(self.base / f'sshd_{self.name}.log').read_text()}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the listener and every connection it serves (the host is gone)."""
        if self.proc is None:
            return
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        self.proc.terminate()
        self.proc.wait(timeout=20)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 15)
        self.proc = None


@dataclass
class SshKit:
    """The client key, its ssh config, and the hosts."""

    base: Path
    config: Path
    hosts: dict[str, Sshd] = field(default_factory=dict)

    def known_hosts(self, *names: str) -> str:
        """known_hosts lines for the hosts ``names`` (all when none)."""
        return "".join(self.hosts[n].public_key + "\n" for n in (names or tuple(self.hosts)))

    def close(self) -> None:
        for host in self.hosts.values():
            host.stop()


def start_kit(base: Path, names: tuple[str, ...] = ("h1", "h2")) -> SshKit:
    """Generate the keys and start one sshd per name."""
    base.mkdir(parents=True, exist_ok=True)
    client = base / "client_key"
    keygen(client)
    authorized = base / "authorized_keys"
    authorized.write_text(Path(f"{client}.pub").read_text())
    config = base / "ssh_config"
    config.write_text(f"Host *\n  IdentityFile {client}\n  IdentitiesOnly yes\n")
    kit = SshKit(base, config)
    for name in names:
        key = base / f"host_{name}"
        keygen(key)
        sshd = Sshd(name, base, _free_port(), key, authorized)
        sshd.start()
        kit.hosts[name] = sshd
    return kit
