"""Run a program with no network at all: in a network namespace of its own (bubblewrap).

`isolated_executable(program)` returns the path of a small launcher that runs `program`
under `bwrap --unshare-net`, the rest of the system as it is (`--dev-bind / /`). Inside,
the only interface is a loopback of the namespace's own: no packet reaches the host's
loopback or any other host, whatever API sends it (WebRTC STUN/TURN over UDP, QUIC,
WebSockets, DNS, prefetch). `--die-with-parent` ends the program with whoever started
the launcher. A program driven over inherited pipes (Playwright's `--remote-debugging-pipe`)
needs no network to be driven.

Where bubblewrap is missing or may not create namespaces (a container without the
privilege), `NetworkIsolationError` says so: callers refuse to run untrusted content
rather than run it with network.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
from functools import cache
from pathlib import Path

BWRAP_ARGS: tuple[str, ...] = ("--dev-bind", "/", "/", "--unshare-net", "--die-with-parent")


class NetworkIsolationError(RuntimeError):
    """A network namespace cannot be made here; the message says how to fix it."""


@cache
def bwrap_path() -> str:
    """The bubblewrap binary, checked once per process by making a namespace."""
    path = shutil.which("bwrap")
    if path is None:
        raise NetworkIsolationError(
            "bubblewrap (bwrap) is not installed: install the `bubblewrap` package "
            "(scripts/install_system.sh does)"
        )
    probe = subprocess.run(
        [path, *BWRAP_ARGS, "--", "true"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        raise NetworkIsolationError(
            f"bwrap cannot create a network namespace here ({probe.stderr.strip()}): allow "
            "user namespaces, or run the container with CAP_SYS_ADMIN"
        )
    return path


def isolated_executable(program: str) -> str:
    """The path of a launcher running `program` (with its arguments) without network.

    The launcher lives in a directory private to this user (mode 0700), named by its
    content, so concurrent processes share one file and nobody else can replace it.
    """
    script = (
        "#!/bin/sh\n"
        # A verifier worker's RLIMIT_DATA (reward_server.memory) is too tight for Chromium's
        # renderers, which crash at start under about 1 GiB of it: lift the soft limit to the
        # hard one. The worker's watchdog still counts these processes in its tree.
        'ulimit -S -d "$(ulimit -H -d)" 2>/dev/null\n'
        f"exec {shlex.quote(bwrap_path())} {' '.join(BWRAP_ARGS)} -- "
        f'{shlex.quote(program)} "$@"\n'
    )
    folder = Path(tempfile.gettempdir()) / f"reward-server-netns-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise NetworkIsolationError(f"{folder} is not a private directory of this user")
    digest = hashlib.sha256(script.encode()).hexdigest()[:16]
    launcher = folder / f"{Path(program).name}-{digest}"
    if not launcher.exists():
        partial = folder / f".{launcher.name}.{os.getpid()}"
        partial.write_text(script)
        partial.chmod(0o700)
        os.replace(partial, launcher)
    return str(launcher)
