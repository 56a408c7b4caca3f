"""Run an untrusted Python program in a bubblewrap sandbox, bounded in time and resources.

`run_python(script, files, stdin, limits)` starts `bwrap` (the Debian package
`bubblewrap`), which starts the system Python on `script` inside a sandbox, feeds it
`stdin`, and returns what it printed and how it ended (`Run.kind`). It never falls back
to an unsandboxed process: when `bwrap` cannot start, `SandboxUnavailable` says why and
how to enable it (`ENABLE_HINT`).

What the sandbox covers
- Namespaces: new user, pid, network, ipc, uts and (where possible) cgroup namespaces.
  The network namespace has only its own loopback: no host, no other sandbox, no
  service on the host's 127.0.0.1 can be reached. Nested user namespaces are refused
  (by the seccomp filter, and by bwrap's `--disable-userns` where it can: not in a
  container whose /proc/sys is read-only).
- System calls: a seccomp filter (`reward_server.seccomp_filter`, x86_64 and aarch64)
  refuses ptrace, mount, unshare/setns, clone with namespace flags, key rings, bpf,
  userfaultfd, perf events, io_uring, non-AF_UNIX sockets and foreign ABIs.
- Files: the root is an empty read-only tmpfs holding a read-only bind of `/usr` (the
  interpreter and its standard library; `/bin`, `/lib`, `/lib64` are symlinks into it),
  a minimal `/dev` (null, zero, random, urandom, tty; read-only but for a size-capped
  `/dev/shm`) and a fresh size-capped tmpfs `/work` as the working directory with the
  files given. No `/proc`, no `/etc`, no `/tmp` of the host, no project directory: the
  service's files, its `/proc/<pid>/environ` and secrets are not there to read, and
  nothing written inside outlives the run.
- Environment: cleared (`--clearenv`), then only PATH, HOME and LANG; Python runs with
  `-I` (no PYTHON* variables, no user site, no script directory on sys.path).
- Identity: when the service runs as root, `bwrap` itself is started as the unprivileged
  uid/gid `REWARD_CODE_UID`/`REWARD_CODE_GID` (no supplementary groups), so the program
  holds no capability anywhere and is charged to an ordinary uid; inside it is uid 1000.
- Resource limits, set by a launcher inside the sandbox before the script runs (so that
  the process limit counts this sandbox's processes only, not every sandbox of the uid):
  CPU seconds (RLIMIT_CPU), address space (RLIMIT_AS), processes and threads
  (RLIMIT_NPROC), size of a written file (RLIMIT_FSIZE), open files (RLIMIT_NOFILE),
  each kept at the starting process's own hard limit where that is lower;
  the tmpfs has a size cap; stdout+stderr are read through pipes with a byte cap.
- Lifetime: a wall-clock deadline; on it, on the output cap, or on any exit of ours, the
  whole process group of `bwrap` is killed. `--die-with-parent` kills the sandbox when
  the process that started it dies (the engine's worker killed on its item timeout),
  and the pid namespace makes every process inside (daemons, orphans) die with the
  program's first process. `--new-session` detaches it from any terminal.

What it does not cover
- It is not a VM: the kernel is shared; a kernel exploit through an allowed system call
  escapes. The seccomp filter is a deny list, not an allow list; on other architectures
  there is none (`status()["seccomp"]`).
- Memory is bounded by address space, not by a cgroup: memory-mapped files and the
  kernel's own allocations are not counted, and a program can still use up to the limit
  per process times the process limit.
- The harness the verifier runs inside shares the interpreter with the program, so a
  program that inspects its own interpreter's memory (frames, `gc`) can read what the
  harness holds in memory (the test being run). Expected outputs of stdin/stdout and
  call-based tests never enter the sandbox; assert-based tests do, by their nature.
- Timing is wall clock on a shared machine: a loaded host makes slow programs time out.

Sandbox start-up (bwrap + interpreter) costs a few tens of milliseconds more than a plain
subprocess; `bench/code.py` measures it.
"""

from __future__ import annotations

import math
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from reward_server import seccomp_filter

RunKind = Literal["exited", "timeout", "memory", "output_limit", "signalled", "stopped"]

WORKDIR = "/work"
# The report channel inside: the launcher moves the pipe it is given to this fd.
REPORT_FD = 3
# The first line the launcher writes on the report channel. A run whose channel lacks it
# never reached our code: the sandbox did not start.
STARTED = b"started\n"

ENABLE_HINT = (
    "the code sandbox needs user namespaces and bubblewrap: install the Debian package "
    "'bubblewrap' (scripts/install_system.sh); in a container allow unshare/mount "
    "(docker compose: security_opt: ['seccomp=unconfined', 'apparmor=unconfined']; "
    "Kubernetes: securityContext.seccompProfile.type: Unconfined and "
    "appArmorProfile.type: Unconfined), and keep kernel.unprivileged_userns_clone=1 / "
    "user.max_user_namespaces > 0 on the host"
)


class SandboxUnavailable(RuntimeError):
    """`bwrap` could not start a sandbox here; the message says why and how to fix it."""


@dataclass(frozen=True)
class Limits:
    """Bounds of one run. `wall_s` includes sandbox and interpreter start-up."""

    wall_s: float = 2.0
    cpu_s: float = 2.0
    memory_bytes: int = 512 * 2**20
    processes: int = 32
    file_size_bytes: int = 2**20
    open_files: int = 64
    output_bytes: int = 2**20
    report_bytes: int = 2**20
    tmpfs_bytes: int = 16 * 2**20


@dataclass(frozen=True)
class SandboxConfig:
    """Where the interpreter is and which uid runs `bwrap` when the service is root."""

    python: str | None = None
    uid: int = 65534
    gid: int = 65534
    bwrap: str = "bwrap"


@dataclass(frozen=True)
class Run:
    """How a run ended.

    `kind`: `exited` (see `exit_code`), `timeout` (wall clock, or CPU seconds: SIGXCPU),
    `memory` (the launcher saw MemoryError before the script could report it),
    `output_limit` (more than `output_bytes` printed, or a file over `file_size_bytes`),
    `signalled` (killed by another signal: segfault, abort), `stopped` (the caller's
    `until` said enough). `report` is what the script wrote on fd 3 after the launcher's
    start line, at most `report_bytes`.
    """

    kind: RunKind
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    report: bytes
    wall_s: float


# Runs inside the sandbox as `python -I -c _LAUNCHER REPORT_FD_IN limits... script args`:
# sets the limits, keeps only fds 0-2 and the report channel (as fd 3), says it started,
# then runs the script as __main__ with argv [script, *args]. Stdlib only.
_LAUNCHER = """\
import os, resource, sys
fd = int(sys.argv[1])
os.dup2(fd, 3)
os.closerange(4, 1 << 16)
names = ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE")
for name, soft in zip(names, map(int, sys.argv[2:7])):
    resource_id = getattr(resource, name)
    hard = soft + 1 if name == "RLIMIT_CPU" else soft
    ceiling = resource.getrlimit(resource_id)[1]
    if ceiling != resource.RLIM_INFINITY:
        # under a lower inherited limit (a CPU-budgeted retry worker, a container's
        # ulimit) the sandbox keeps the lower one: raising it is refused
        hard = min(hard, ceiling)
        soft = min(soft, hard - 1 if name == "RLIMIT_CPU" else hard)
    resource.setrlimit(resource_id, (soft, hard))
os.write(3, b"started\\n")
script = sys.argv[7]
sys.argv = [script, *sys.argv[8:]]
with open(script, "rb") as f:
    code = compile(f.read(), script, "exec")
try:
    exec(code, {"__name__": "__main__", "__file__": script, "__builtins__": __builtins__})
except MemoryError:
    os.write(3, b"memory\\n")
    os._exit(1)
"""
# The launcher's line for a MemoryError that the script did not handle itself.
_MEMORY = b"memory\n"


def find_python(config: SandboxConfig) -> str:
    """The interpreter to run inside: the configured one, else the system's under /usr."""
    if config.python:
        return config.python
    for candidate in ("/usr/local/bin/python3", "/usr/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise SandboxUnavailable(
        "no system Python under /usr (/usr/local/bin/python3 or /usr/bin/python3) for the "
        "code sandbox; set REWARD_CODE_PYTHON"
    )


def _bwrap_argv(
    config: SandboxConfig,
    python: str,
    limits: Limits,
    file_fds: Mapping[str, int],
    seccomp_fd: int | None,
) -> list[str]:
    bwrap = shutil.which(config.bwrap)
    if bwrap is None:
        raise SandboxUnavailable(f"{config.bwrap!r} is not installed; {ENABLE_HINT}")
    argv = [
        bwrap,
        "--unshare-all", "--unshare-user",
        *(["--disable-userns"] if can_disable_userns(bwrap, python, config) else []),
        "--die-with-parent", "--new-session",
        "--uid", "1000", "--gid", "1000",
        "--clearenv",
        "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
        "--setenv", "HOME", WORKDIR, "--setenv", "LANG", "C.UTF-8",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--dev", "/dev",
        # /dev is bwrap's own tmpfs: read-only, but for a capped /dev/shm (POSIX shared
        # memory and semaphores, as multiprocessing uses them).
        "--size", str(limits.tmpfs_bytes), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
        "--size", str(limits.tmpfs_bytes), "--tmpfs", WORKDIR,
    ]  # fmt: skip
    real = os.path.realpath(python)
    if not real.startswith("/usr/"):
        prefix = str(Path(real).parent.parent)  # <prefix>/bin/python3
        argv += ["--ro-bind", prefix, prefix]
    for name, fd in file_fds.items():
        argv += ["--perms", "0644", "--file", str(fd), f"{WORKDIR}/{name}"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    # The root tmpfs bwrap builds on stays read-only: only the size-capped /work is writable.
    argv += ["--remount-ro", "/", "--chdir", WORKDIR, "--"]
    return argv


@cache
def can_disable_userns(bwrap: str, python: str, config: SandboxConfig) -> bool:
    """Whether bwrap can forbid nested user namespaces here (checked once per process).

    It does so by writing /proc/sys/user/max_user_namespaces inside the sandbox, which a
    container's read-only /proc/sys refuses; there the sandbox goes without it.
    """
    try:
        result = subprocess.run(
            [bwrap, "--unshare-user", "--disable-userns", "--ro-bind", "/", "/", "--",
             python, "-I", "-c", "pass"],
            capture_output=True, timeout=10, env={}, **_identity(config),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _identity(config: SandboxConfig) -> dict[str, Any]:
    """Popen arguments that start bwrap as the unprivileged uid when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": config.uid, "group": config.gid, "extra_groups": []}


def _memfd(name: str, data: bytes) -> int:
    """An in-memory file holding `data`, positioned at its start (bwrap reads it)."""
    fd = os.memfd_create(name, 0)
    with open(fd, "wb", closefd=False) as file:
        file.write(data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def run_python(
    script: str,
    files: Mapping[str, bytes],
    stdin: bytes = b"",
    limits: Limits | None = None,
    config: SandboxConfig | None = None,
    args: Sequence[str] = (),
    until: Callable[[bytes], bool] | None = None,
) -> Run:
    """Run `files[script]` with Python in a fresh sandbox (see the module docstring).

    `files` are written into the working directory `/work` (flat names). `until`, when
    given, is called with each new piece of the report channel (the launcher's start line
    included); once it returns True the run is killed (kind `stopped`). Raises
    `SandboxUnavailable` when the sandbox cannot start; anything the program does is a
    `Run`, never an exception.
    """
    limits = limits or Limits()
    config = config or SandboxConfig()
    if script not in files:
        raise ValueError(f"script {script!r} is not among the files")
    python = find_python(config)
    file_fds = {name: _memfd(name, data) for name, data in files.items()}
    bpf = seccomp_filter.build()
    seccomp_fd = None if bpf is None else _memfd("seccomp", bpf)
    extra_fds = () if seccomp_fd is None else (seccomp_fd,)
    report_read, report_write = os.pipe()
    try:
        argv = _bwrap_argv(config, python, limits, file_fds, seccomp_fd)
        argv += [
            python, "-I", "-c", _LAUNCHER, str(report_write),
            str(math.ceil(limits.cpu_s)), str(limits.memory_bytes), str(limits.processes),
            str(limits.file_size_bytes), str(limits.open_files),
            f"{WORKDIR}/{script}", *args,
        ]  # fmt: skip
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(report_write, *file_fds.values(), *extra_fds),
                start_new_session=True,
                env={},
                **_identity(config),
            )
        except PermissionError as exc:
            # As root we start bwrap as REWARD_CODE_UID: that needs CAP_SETUID/CAP_SETGID.
            raise SandboxUnavailable(
                f"could not start {argv[0]} as uid {config.uid}: {exc}; a service running as "
                "root needs CAP_SETUID and CAP_SETGID (e.g. not `cap_drop: [ALL]` without "
                "`cap_add: [SETUID, SETGID]`), or run it as a non-root user"
            ) from exc
        except OSError as exc:
            raise SandboxUnavailable(f"could not start {argv[0]}: {exc}; {ENABLE_HINT}") from exc
    except BaseException:
        # No run will read it: left open, a worker would lose one fd per item it scores.
        os.close(report_read)
        raise
    finally:
        for fd in (*file_fds.values(), *extra_fds):
            os.close(fd)
        os.close(report_write)
    try:
        return _supervise(proc, report_read, stdin, limits, started, until)
    finally:
        _kill(proc)


def _supervise(
    proc: subprocess.Popen[bytes],
    report_fd: int,
    stdin: bytes,
    limits: Limits,
    started: float,
    until: Callable[[bytes], bool] | None,
) -> Run:
    """Feed stdin, read the pipes under the byte cap, enforce the deadline."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    deadline = started + limits.wall_s
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray(), report_fd: bytearray()}
    selector = selectors.DefaultSelector()
    for fd in buffers:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    pending = memoryview(stdin)
    stdin_fd = proc.stdin.fileno()
    if pending:
        os.set_blocking(stdin_fd, False)
        selector.register(stdin_fd, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    output = 0
    reading = len(buffers)
    kind: RunKind | None = None
    try:
        while reading:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kind = "timeout"
                break
            for key, _ in selector.select(remaining):
                fd = int(key.fd)
                if fd == stdin_fd:
                    try:
                        pending = pending[os.write(fd, pending[: 1 << 16]) :]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(fd)
                        proc.stdin.close()
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    selector.unregister(fd)
                    reading -= 1
                    continue
                if fd == report_fd:
                    received = buffers[fd]
                    kept = chunk[: max(0, len(STARTED) + limits.report_bytes - len(received))]
                    received += kept
                    if until is not None and kept and until(kept):
                        kind = "stopped"
                        break
                    continue
                output += len(chunk)
                if output > limits.output_bytes:
                    kind = "output_limit"
                    break
                buffers[fd] += chunk[: max(0, limits.output_bytes + 1 - len(buffers[fd]))]
            if kind is not None:
                break
    finally:
        selector.close()
        os.close(report_fd)
        if not proc.stdin.closed:
            proc.stdin.close()
    if kind is None:
        try:
            proc.wait(timeout=max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kind = "timeout"
    _kill(proc)
    wall = time.monotonic() - started
    stdout, stderr = bytes(buffers[out_fd]), bytes(buffers[err_fd])
    report = bytes(buffers[report_fd])
    if not report.startswith(STARTED):
        if kind is None and proc.returncode is not None:
            message = stderr.decode("utf-8", "replace").strip()[-500:]
            raise SandboxUnavailable(
                f"the sandbox did not start (exit {proc.returncode}: {message}); {ENABLE_HINT}"
            )
        # Killed (deadline, output cap) before the launcher spoke: a slow start on a
        # loaded host, counted against the program like any overrun.
    report = report[len(STARTED) :] if report.startswith(STARTED) else b""
    code = proc.returncode
    if kind is None:
        kind = "memory" if report.endswith(_MEMORY) else _kind_of_exit(code)
    return Run(kind, code, stdout, stderr, report, wall)


def _kind_of_exit(code: int | None) -> RunKind:
    """bwrap exits with the program's status, or 128 + the signal that killed it."""
    if code is None or 0 <= code <= 128:
        return "exited"
    sig = code - 128 if code > 128 else -code
    if sig == signal.SIGXCPU:
        return "timeout"
    if sig == signal.SIGXFSZ:
        return "output_limit"
    return "signalled"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill bwrap's process group (the sandbox dies with it) and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    proc.wait()


# Held while `status` probes: a call that comes while the first one starts its sandboxes
# waits for that answer (cached) instead of starting sandboxes of its own.
_PROBING = threading.Lock()


def status(config: SandboxConfig | None = None) -> dict[str, Any]:
    """What `/health` shows: whether a sandbox starts, why not, and its one variable part."""
    with _PROBING:
        return _status(config or SandboxConfig())


def _status(config: SandboxConfig) -> dict[str, Any]:
    problem = probe(config)
    seccomp = seccomp_filter.build() is not None
    nested = seccomp
    if problem is None and not nested:
        bwrap = shutil.which(config.bwrap)
        nested = bwrap is not None and can_disable_userns(bwrap, find_python(config), config)
    return {"available": problem is None, "error": problem, "seccomp": problem is None and seccomp,
            "nested_userns_disabled": problem is None and nested}


@cache
def probe(config: SandboxConfig | None = None) -> str | None:
    """None when a sandbox starts here, else why not (cached per process)."""
    try:
        run = run_python("probe.py", {"probe.py": b"print('ok')\n"}, config=config,
                         limits=Limits(wall_s=10.0))
    except SandboxUnavailable as exc:
        return str(exc)
    if run.kind != "exited" or run.exit_code != 0 or run.stdout != b"ok\n":
        return f"the sandbox started but a trivial program failed ({run.kind}, {run.exit_code})"
    return None
