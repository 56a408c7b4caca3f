"""Runs INSIDE the code sandbox, never imported by the service: one test of one program.

The `general-code` verifier copies this file into the sandbox as `harness.py`, beside
`solution.py` (the model's program) and `job.json`. Stdlib only; the system Python runs it.

`job.json` (read, then deleted before the program runs):
    {"mode": "stdio" | "call" | "assert", "nonce": str,
     "fn_name": str (call), "args": [...] (call), "test": str (assert)}

- stdio: the program runs as `__main__`, reading the test's input on stdin; the verifier
  compares what it printed. Expected outputs never enter the sandbox.
- call: the program runs as module `solution`; then `fn_name(*args)` is called, or the
  method of a fresh `Solution()` (LeetCode style); the JSON of its return value is
  reported and compared outside. Expected outputs never enter the sandbox.
- assert: the program runs as module `solution`, then the test code in the same
  namespace; an AssertionError is a wrong answer.

One line goes to fd 3 at the end: `<nonce> {"kind": ..., "error"?: ..., "result"?: ...}`
with kind `ok`, `wrong_answer`, `runtime_error` or `memory`. Lines without the nonce are
ignored by the verifier, so a program that finds fd 3 cannot forge a pass without the
nonce, which only lives in this process's memory.
"""

import builtins
import json
import os
import sys

# Bound to local names before the program runs, so that patching the modules does not
# change what the harness reports.
_write = os.write
_dumps = json.dumps
_SystemExit, _AssertionError, _MemoryError, _BaseException = (
    SystemExit, AssertionError, MemoryError, BaseException
)


def _report(nonce: str, **fields: object) -> None:
    _write(3, (nonce + " " + _dumps(fields, default=repr) + "\n").encode())


def _callable(namespace: dict, fn_name: str) -> object:
    if fn_name in namespace and callable(namespace[fn_name]):
        return namespace[fn_name]
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, fn_name):
        return getattr(solution(), fn_name)
    raise NameError(f"no function or Solution method named {fn_name!r}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def main() -> None:
    with open("job.json", encoding="utf-8") as f:
        job = json.load(f)
    os.unlink("job.json")
    nonce = job["nonce"]
    mode = job["mode"]
    with open("solution.py", encoding="utf-8", errors="replace") as f:
        source = f.read()
    os.unlink("harness.py")
    namespace = {"__name__": "__main__" if mode == "stdio" else "solution",
                 "__builtins__": builtins}
    try:
        code = compile(source, "solution.py", "exec")
        exec(code, namespace)
        if mode == "call":
            result = _callable(namespace, job["fn_name"])(*job["args"])
            _report(nonce, kind="ok", result=result)
        elif mode == "assert":
            exec(compile(job["test"], "test.py", "exec"), namespace)
            _report(nonce, kind="ok")
        else:
            sys.stdout.flush()
            _report(nonce, kind="ok")
    except _SystemExit as exc:
        if mode == "stdio" and exc.code in (None, 0):
            sys.stdout.flush()
            _report(nonce, kind="ok")
        else:
            _report(nonce, kind="runtime_error", error=f"exit({exc.code!r})")
    except _AssertionError as exc:
        _report(nonce, kind="wrong_answer", error=_describe(exc))
    except _MemoryError:
        _report(nonce, kind="memory", error="MemoryError")
    except _BaseException as exc:  # noqa: BLE001 - any failure of the program is its verdict
        _report(nonce, kind="runtime_error", error=_describe(exc))


if __name__ == "__main__":
    main()
