"""Runs INSIDE the code sandbox, never imported by the service: the tests of one program.

The `general-code` verifier copies this file into the sandbox as `harness.py`, beside
`solution.py` (the model's program) and `job.json`. Stdlib only; the system Python runs it.

`job.json` (read, then deleted before any program code runs):
    {"mode": "stdio" | "call" | "assert", "nonce": str, "time_limit_s": float,
     "output_bytes": int, "stop_at_first_failure": bool,
     "tests": [{"stdin": str} | {"fn_name": str, "args": [...]} | {"code": str}, ...]}

The program is compiled once; each test runs in a forked child (a fresh copy of this
process, in its own process group, with its own CPU limit), so a test costs a fork, not
a sandbox and an interpreter start-up:
- stdio: the program runs as `__main__` with the test's input on stdin; what it prints
  is read here (at most `output_bytes`) and sent back for the verifier to compare.
  Expected outputs never enter the sandbox.
- call: the program runs as module `solution`; then `fn_name(*args)` is called, or the
  method of a fresh `Solution()` (LeetCode style); its return value is sent back as JSON
  and compared outside. Expected outputs never enter the sandbox.
- assert: the program runs as module `solution`, then the test code in its namespace;
  an AssertionError is a wrong answer.

Lines on fd 3, each `<nonce> <json>`: the child's `{"test": i, "kind": "ok" |
"wrong_answer" | "runtime_error" | "memory", "error"?, "result"?}`, then this process's
`{"test": i, "status": wait status, "timeout": bool, "output_limit": bool, "stdout"?}`.
Lines without the nonce are ignored by the verifier, so a program that writes to fd 3
cannot forge a pass without reading the nonce out of this interpreter's memory (the
sandbox docstring lists this limit).
"""

import builtins
import json
import os
import resource
import select
import signal
import sys
import time

# Bound before any program code runs, so that patching builtins or modules does not
# change what the harness does.
_write, _dumps, _exit = os.write, json.dumps, os._exit
_SystemExit, _AssertionError, _MemoryError, _BaseException = (
    SystemExit, AssertionError, MemoryError, BaseException
)


def _report(nonce, **fields):
    _write(3, (nonce + " " + _dumps(fields, default=repr) + "\n").encode())


def _callable(namespace, fn_name):
    if fn_name in namespace and callable(namespace[fn_name]):
        return namespace[fn_name]
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, fn_name):
        return getattr(solution(), fn_name)
    raise NameError(f"no function or Solution method named {fn_name!r}")


def _describe(exc):
    return f"{type(exc).__name__}: {exc}"[:300]


def _child(code, mode, test, index, nonce):
    """Run one test in this (forked) process and report it; never returns."""
    namespace = {"__name__": "__main__" if mode == "stdio" else "solution",
                 "__builtins__": builtins}
    passed = False
    try:
        exec(code, namespace)
        if mode == "call":
            result = _callable(namespace, test["fn_name"])(*test["args"])
            _report(nonce, test=index, kind="ok", result=result)
            passed = True
        elif mode == "assert":
            exec(compile(test["code"], "test.py", "exec"), namespace)
            _report(nonce, test=index, kind="ok")
            passed = True
        else:
            sys.stdout.flush()
            _report(nonce, test=index, kind="ok")
            passed = True
    except _SystemExit as exc:
        if mode == "stdio" and exc.code in (None, 0):
            sys.stdout.flush()
            _report(nonce, test=index, kind="ok")
            passed = True
        else:
            _report(nonce, test=index, kind="runtime_error", error=f"exit({exc.code!r})")
    except _AssertionError as exc:
        _report(nonce, test=index, kind="wrong_answer", error=_describe(exc))
    except _MemoryError:
        _report(nonce, test=index, kind="memory", error="MemoryError")
    except _BaseException as exc:  # noqa: BLE001 - any failure of the program is its verdict
        _report(nonce, test=index, kind="runtime_error", error=_describe(exc))
    try:
        sys.stdout.flush()
    except _BaseException:  # noqa: BLE001 - the output pipe may be gone
        _exit(1)
    _exit(0 if passed else 1)


def _run_test(code, job, test, index, wakeup):
    """Fork a child for one test, collect its output and exit; report; True if it passed."""
    nonce, limit = job["nonce"], job["time_limit_s"]
    stdin_path = f"stdin-{index}"
    with open(stdin_path, "w", encoding="utf-8") as f:
        f.write(test.get("stdin", ""))
    stdin_fd = os.open(stdin_path, os.O_RDONLY)
    os.unlink(stdin_path)
    out_read, out_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgid(0, 0)
        os.close(out_read)
        os.close(wakeup)
        os.dup2(stdin_fd, 0)
        os.dup2(out_write, 1)
        os.dup2(os.open("/dev/null", os.O_WRONLY), 2)
        seconds = max(1, int(limit + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
        _child(code, job["mode"], test, index, nonce)
    os.close(stdin_fd)
    os.close(out_write)
    os.set_blocking(out_read, False)
    deadline = time.monotonic() + limit
    output, status, timed_out, over, eof = bytearray(), None, False, False, False
    # Read until the child has exited and its output is drained (a daemon it left
    # holding the pipe does not keep the test open), the deadline, or the output cap.
    while status is None or not eof:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = status is None
            break
        watched = [wakeup] if eof else [out_read, wakeup]
        ready, _, _ = select.select(watched, [], [], remaining if status is None else 0)
        if wakeup in ready:
            os.read(wakeup, 512)
        if out_read in ready:
            chunk = os.read(out_read, 1 << 16)
            eof = not chunk
            output += chunk
            if len(output) > job["output_bytes"]:
                over = True
                break
        if status is None:
            done, found = os.waitpid(pid, os.WNOHANG)
            status = found if done else None
        elif out_read not in ready:
            break  # exited, nothing more buffered
    os.close(out_read)
    try:
        os.killpg(pid, signal.SIGKILL)  # an overrun, or what the test left in its group
    except OSError:
        pass
    if status is None:
        _, status = os.waitpid(pid, 0)
    fields = {"test": index, "status": status, "timeout": timed_out, "output_limit": over}
    if job["mode"] == "stdio":
        fields["stdout"] = output[: job["output_bytes"]].decode("utf-8", "replace")
    _report(nonce, **fields)
    return not (timed_out or over) and status == 0


def main():
    with open("job.json", encoding="utf-8") as f:
        job = json.load(f)
    os.unlink("job.json")
    with open("solution.py", encoding="utf-8", errors="replace") as f:
        source = f.read()
    os.unlink("solution.py")
    os.unlink("harness.py")
    try:
        code = compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:
        _report(job["nonce"], test=0, kind="runtime_error", error=_describe(exc))
        _report(job["nonce"], test=0, status=256, timeout=False, output_limit=False)
        return
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD wakes select
    for index, test in enumerate(job["tests"]):
        passed = _run_test(code, job, test, index, wakeup_read)
        if not passed and job["stop_at_first_failure"] and job["mode"] != "stdio":
            return
        # stdio outputs are compared outside, so a wrong output is only known there:
        # every test runs (within the item's budget) and the verifier counts them.


if __name__ == "__main__":
    main()
