"""The sandbox's seccomp filter: what it refuses inside a real sandbox, what still works."""

from __future__ import annotations

import platform
import struct

import pytest

from reward_server import sandbox, seccomp_filter
from reward_server.sandbox import Limits


def run(source: str) -> str:
    result = sandbox.run_python("main.py", {"main.py": source.encode()}, limits=Limits(wall_s=10))
    assert result.kind == "exited", result
    return result.stdout.decode()


def test_the_filter_is_in_force_here() -> None:
    assert seccomp_filter.build() is not None
    assert sandbox.status()["seccomp"] is True


BPF = seccomp_filter.DENIED["bpf"][0 if platform.machine() == "x86_64" else 1]


@pytest.mark.parametrize(
    "call,errno",
    [
        ("libc.unshare(0x10000000)", 1),  # a nested user namespace: EPERM
        ("libc.ptrace(0, 0, 0, 0)", 1),
        (f"libc.syscall({BPF}, 0, 0, 0)", 1),
        ("libc.mount(b'none', b'/work', b'tmpfs', 0, None)", 1),
        ("libc.syscall(435, 0, 0)", 38),  # clone3: ENOSYS, so that libc falls back to clone
    ],
)
def test_refused_calls(call: str, errno: int) -> None:
    out = run(f"import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
              f"print({call}, ctypes.get_errno())\n")
    assert out.split() == ["-1", str(errno)]


def test_only_unix_sockets() -> None:
    out = run("import socket\ns = socket.socket(socket.AF_UNIX)\nprint('unix ok')\n"
              "try:\n    socket.socket(socket.AF_INET6)\nexcept PermissionError:\n"
              "    print('inet refused')\n")
    assert out.split("\n")[:2] == ["unix ok", "inet refused"]


def test_threads_fork_subprocess_and_multiprocessing_still_work() -> None:
    source = (
        "import os, subprocess, sys, threading, multiprocessing as mp\n"
        "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
        "pid = os.fork()\nif pid == 0:\n    os._exit(3)\n"
        "print('fork', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
        "print(subprocess.run([sys.executable, '-c', 'print(2)'], capture_output=True,"
        " text=True).stdout.strip())\n"
        "with mp.get_context('fork').Pool(2) as pool:\n    print(pool.map(abs, [-4, -5]))\n"
    )
    assert run(source).split("\n")[:4] == ["thread", "fork 3", "2", "[4, 5]"]


def test_filter_shape() -> None:
    x86 = seccomp_filter.build("x86_64")
    arm = seccomp_filter.build("aarch64")
    assert x86 is not None and arm is not None
    assert len(x86) % 8 == 0 and len(x86) // 8 == len(arm) // 8 + 2  # the x32 check
    last = struct.unpack("<HBBI", x86[-8:])
    assert last == (0x06, 0, 0, 0x7FFF0000)  # default: allow
    assert seccomp_filter.build("riscv64") is None
