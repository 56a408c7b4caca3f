"""The bubblewrap sandbox against hostile programs: each bounded in time, none escapes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reward_server import sandbox
from reward_server.sandbox import Limits, Run


def run(source: str, stdin: bytes = b"", **limits: float) -> Run:
    return sandbox.run_python("main.py", {"main.py": source.encode()}, stdin, Limits(**limits))


@pytest.fixture(scope="module", autouse=True)
def _sandbox_starts() -> None:
    # Not a skip: without a working sandbox every test here must fail, loudly.
    assert sandbox.probe() is None, sandbox.probe()


@pytest.fixture
def marker() -> Iterator[tuple[Path, str]]:
    """A secret file outside the sandbox, in /tmp."""
    secret = uuid.uuid4().hex
    path = Path("/tmp") / f"reward-sandbox-marker-{secret[:8]}"
    path.write_text(secret)
    yield path, secret
    path.unlink()


def test_a_plain_program_reads_stdin_and_prints() -> None:
    result = run("print(sum(map(int, input().split())))", b"1 2\n")
    assert (result.kind, result.exit_code, result.stdout) == ("exited", 0, b"3\n")


def test_fork_bomb_is_bounded_and_cleaned_up() -> None:
    started = time.monotonic()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run(bomb, wall_s=1.5)
    assert result.kind == "timeout"
    assert time.monotonic() - started < 6


def test_process_limit_refuses_forks() -> None:
    source = ("import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
              "            time.sleep(5)\n            os._exit(0)\n        n += 1\n"
              "except OSError:\n    print(n)\n")
    result = run(source, processes=8)
    assert result.kind == "exited" and 0 < int(result.stdout) < 8


def test_busy_loop_times_out() -> None:
    result = run("while True:\n    pass\n", wall_s=1.0)
    assert result.kind == "timeout" and result.wall_s < 3


def test_cpu_limit_stops_a_spinner_before_the_wall_clock() -> None:
    result = run("while True:\n    pass\n", wall_s=30.0, cpu_s=1.0)
    assert result.kind == "timeout" and result.wall_s < 15


def test_allocating_10_gb_is_a_memory_failure() -> None:
    assert run("x = bytearray(10 * 2**30)\n").kind == "memory"


def test_printing_1_gb_hits_the_output_cap() -> None:
    started = time.monotonic()
    flood = "import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n"
    result = run(flood, output_bytes=2**20)
    assert result.kind == "output_limit"
    assert len(result.stdout) <= 2**20 + 1
    assert time.monotonic() - started < 5


def test_sleeping_forever_times_out() -> None:
    result = run("import time\ntime.sleep(1e9)\n", wall_s=0.8)
    assert result.kind == "timeout" and result.wall_s < 3


def test_no_connection_reaches_a_listener_on_the_host() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        source = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), 1)\n"
                  "    print('connected')\nexcept OSError as e:\n    print('refused', e.errno)\n")
        result = run(source)
        assert result.stdout.startswith(b"refused")
        with pytest.raises(TimeoutError):
            listener.accept()


def test_host_files_are_not_there(marker: tuple[Path, str]) -> None:
    path, secret = marker
    project_file = Path(__file__).resolve()
    source = "\n".join(
        f"try:\n    print(open({str(p)!r}).read())\nexcept OSError as e:\n    print('no', e.errno)"
        for p in (path, project_file, f"/proc/{os.getpid()}/environ", "/etc/passwd")
    )
    result = run(source)
    assert result.kind == "exited"
    assert secret.encode() not in result.stdout
    assert result.stdout.count(b"no ") == 4


def test_environment_is_cleared() -> None:
    os.environ["REWARD_TEST_SECRET"] = "hunter2"
    try:
        result = run("import os\nprint(dict(os.environ))")
    finally:
        del os.environ["REWARD_TEST_SECRET"]
    assert b"hunter2" not in result.stdout
    assert b"'HOME': '/work'" in result.stdout


def test_writes_outside_the_work_dir_fail_and_inside_vanish(tmp_path: Path) -> None:
    target = tmp_path / "escaped"
    source = (f"import os\nfor p in ({str(target)!r}, '/usr/escaped', '/escaped'):\n"
              "    try:\n        open(p, 'w').write('x')\n        print('wrote', p)\n"
              "    except OSError:\n        print('refused')\nopen('kept', 'w').write('x')\n"
              "print(os.getcwd(), os.getuid())\n")
    result = run(source)
    assert result.stdout.count(b"refused") == 3
    assert b"/work 1000" in result.stdout
    assert not target.exists() and not Path("/usr/escaped").exists()
    assert "kept" not in run("import os\nprint(os.listdir('.'))").stdout.decode()


def test_killing_the_parent_does_not_reach_us() -> None:
    result = run("import os\ntry:\n    os.kill(os.getppid(), 9)\nexcept OSError:\n    pass\n"
                 "print('still here')\n")
    assert result.stdout == b"still here\n"
    assert run("print('next')").stdout == b"next\n"


def test_a_daemon_does_not_outlive_the_run() -> None:
    tag = uuid.uuid4().hex  # in the argv of every process of the run, daemon included
    source = ("import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
              "        time.sleep(1e9)\n    os._exit(0)\ntime.sleep(float(sys.argv[2]))\n"
              "print('parent done')\n")
    files = {"main.py": source.encode()}
    seen_while_running: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + 3
        while not seen_while_running and time.monotonic() < deadline:
            seen_while_running.extend(_processes_with(tag))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = sandbox.run_python("main.py", files, args=(tag, "0.5"))
    watcher.join()
    assert result.stdout == b"parent done\n"
    assert seen_while_running, "the check must see the run's processes while it runs"
    time.sleep(0.2)
    assert _processes_with(tag) == []


def _processes_with(tag: str) -> list[int]:
    pids = (p for p in Path("/proc").iterdir() if p.name.isdigit())
    return [int(p.name) for p in pids if _cmdline_has(p, tag)]


def _cmdline_has(proc_dir: Path, tag: str) -> bool:
    try:
        return tag.encode() in (proc_dir / "cmdline").read_bytes()
    except OSError:
        return False


def test_ctypes_segfault_is_a_crash_of_the_program_only() -> None:
    result = run("import ctypes\nctypes.string_at(0)\n")
    assert result.kind == "signalled"


def test_a_program_cannot_forge_the_start_line() -> None:
    # The report channel is fd 3: what the program writes lands after the launcher's line.
    result = run("import os\nos.write(3, b'forged\\n')\n")
    assert result.report == b"forged\n"


def test_a_missing_bwrap_is_unavailable_not_unsandboxed() -> None:
    config = sandbox.SandboxConfig(bwrap="bwrap-not-installed")
    with pytest.raises(sandbox.SandboxUnavailable, match="security_opt"):
        sandbox.run_python("m.py", {"m.py": b"print(1)"}, config=config)
    assert sandbox.probe(config) is not None


def test_a_sandbox_that_cannot_start_leaves_no_fd_open() -> None:
    config = sandbox.SandboxConfig(bwrap="bwrap-not-installed")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(sandbox.SandboxUnavailable):
            sandbox.run_python("m.py", {"m.py": b"print(1)"}, config=config)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_lower_inherited_limit_is_kept_not_a_failure_to_start() -> None:
    # as in the engine's retry worker, whose CPU budget is a hard RLIMIT_CPU
    script = (
        "import resource\n"
        "from reward_server import sandbox\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (20, 21))\n"
        "run = sandbox.run_python('m.py', {'m.py': b'import resource\\n"
        "print(resource.getrlimit(resource.RLIMIT_CPU))'}, limits=sandbox.Limits(cpu_s=60))\n"
        "print(run.kind, run.stdout.decode().strip())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "exited (20, 21)", result.stderr[-500:]


def test_a_sandbox_that_cannot_start_is_unavailable() -> None:
    config = sandbox.SandboxConfig(python="/usr/bin/no-such-python")
    with pytest.raises(sandbox.SandboxUnavailable, match="did not start"):
        sandbox.run_python("m.py", {"m.py": b"print(1)"}, config=config)


def test_nested_user_namespaces_follow_the_status() -> None:
    source = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
              "print(libc.unshare(0x10000000), ctypes.get_errno())\n")  # CLONE_NEWUSER
    refused = run(source).stdout.split()[0] == b"-1"
    assert refused is sandbox.status()["nested_userns_disabled"]


def test_dev_is_read_only_and_shared_memory_is_capped() -> None:
    source = (
        "try:\n    open('/dev/x', 'w')\nexcept OSError as e:\n    print('dev', e.errno)\n"
        "open('/dev/null', 'w').write('fine')\nn = 0\ntry:\n    while True:\n"
        "        open(f'/dev/shm/{n}', 'wb').write(b'x' * 2**18)\n        n += 1\n"
        "except OSError as e:\n    print('shm', e.errno, n)\n"
    )
    result = run(source, tmpfs_bytes=4 * 2**20)
    dev, shm = result.stdout.decode().splitlines()
    assert dev == "dev 30"  # EROFS
    assert shm.startswith("shm 28 ") and int(shm.split()[2]) <= 16  # ENOSPC within 4 MiB


def test_a_refused_uid_switch_names_the_missing_capabilities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(sandbox.subprocess, "Popen", refuse)
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="CAP_SETUID"):
            sandbox.run_python("m.py", {"m.py": b"print(1)"})
    finally:
        sandbox.can_disable_userns.cache_clear()  # probed under the refusing Popen
