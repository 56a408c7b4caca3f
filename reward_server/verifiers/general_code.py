"""`general-code`: run the model's Python program against the reference's tests, sandboxed.

Extraction (`extract`, in the server process): the last `<answer>` block (with
`strict_tags: false`, the shared lenient fallbacks); inside it, the body of the last
fenced code block if there is one (```` ```python ````), else the whole text.

Reference formats (`answer`: a JSON document as a string or an object-like string; a
one-element list holding such a string, as data rows store it; or a list of asserts):
- stdin/stdout (the recipe's, APPS/TACO/CodeContests):
  `{"inputs": ["1 2\\n", ...], "outputs": ["3\\n", ...]}`. Each input is fed on stdin
  to a fresh run; the printed output must match line by line, trailing whitespace and
  trailing blank lines ignored, and tokens that both read as numbers equal within
  `float_tolerance` (absolute or relative).
- call-based (APPS/TACO/LiveCodeBench): `{"fn_name": "solve", "inputs": [[1, 2], ...],
  "outputs": [3, ...]}`. Each input is the argument list of one call of `solve`, or of
  the method `solve` of a fresh `Solution()`; the JSON of the return value must equal
  the output (numbers within `float_tolerance`; tuples are lists). As APPS does, an
  output written as a one-element list also accepts its element.
- assert-based (MBPP/HumanEval/KodCode): `{"tests": "assert add(1, 2) == 3\\n...",
  "setup": "import math"}` (setup optional), or `{"tests": [assert, ...]}`, or a plain
  list of assert strings. Test code runs after the program, in its namespace. A string
  of tests is split into one test per top-level `assert`, each run with the non-assert
  statements before it (so HumanEval's `def check(candidate): ...` + `check(f)` is one
  test and MBPP's three asserts are three).

All tests of an item run in one fresh sandbox (`reward_server.sandbox`): a harness
(`code_harness`) compiles the program once and runs each test in a forked child under
the per-test limit `time_limit_s`; the whole item runs under `REWARD_CODE_ITEM_LIMIT_S`
(below the engine's item timeout, whose kill stays the outer bound). Score: 1.0 when
every test passes, else 0 (the code-RL convention), or the fraction passed with
`partial_credit`. Components
`tests_passed`, `tests_total`; the message names the first failure and its kind:
`wrong_answer`, `runtime_error`, `timeout`, `memory` or `output_limit`. A wrong program is
status `ok` with reward 0. A reference that cannot be read, or a sandbox that cannot
start, is status `error` (never an unsandboxed run).
"""

from __future__ import annotations

import ast
import json
import math
import os
import secrets
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from reward_server import sandbox
from reward_server import settings as settings_module
from reward_server.extraction import extract_answer, last_fenced_block
from reward_server.settings import Settings
from reward_server.types import ItemContext, Reference, Verdict
from reward_server.verifiers.base import BaseOptions, option

Mode = Literal["stdio", "call", "assert"]
FailureKind = Literal["wrong_answer", "runtime_error", "timeout", "memory", "output_limit"]

_HARNESS = (Path(__file__).parent / "code_harness.py").read_bytes()


@dataclass(frozen=True)
class Options(BaseOptions):
    time_limit_s: float = option(
        2.0, "Wall-clock and CPU limit of one test (seconds).", gt=0.0, le=30.0
    )
    partial_credit: bool = option(
        False, "Score the fraction of tests passed instead of all-or-nothing."
    )
    stop_at_first_failure: bool = option(
        True, "Skip the remaining tests after one fails (they count as failed)."
    )
    float_tolerance: float = option(
        1e-6, "Absolute or relative tolerance when comparing numbers in outputs.", ge=0.0, le=1e6
    )

    def __post_init__(self) -> None:
        if not 0 < self.time_limit_s <= 30:
            raise ValueError(f"time_limit_s must be in (0, 30] seconds, got {self.time_limit_s}")
        if self.float_tolerance < 0:
            raise ValueError(f"float_tolerance must be >= 0, got {self.float_tolerance}")


@dataclass(frozen=True)
class CodeTest:
    """One test: how to run it and what it must give (`expected` stays outside)."""

    mode: Mode
    stdin: str = ""
    args: tuple[Any, ...] = ()
    fn_name: str = ""
    code: str = ""
    expected: Any = None


class BadReference(ValueError):
    """The reference is not one of the documented test formats."""


# ---------------------------------------------------------------------------------------
# Extraction (server process)
# ---------------------------------------------------------------------------------------
def extract(response: str, options: Options, context: ItemContext) -> str | None:
    """The program: the last fenced block of the answer, else the answer's text."""
    del context
    answer = extract_answer(response, strict_tags=options.strict_tags)
    if not answer:
        return None
    return last_fenced_block(answer) or answer.strip() or None


# ---------------------------------------------------------------------------------------
# Reference parsing
# ---------------------------------------------------------------------------------------
def parse_tests(reference: Reference) -> list[CodeTest]:
    """The tests a reference describes (see the module docstring); raises on anything else."""
    document: Any = reference
    if isinstance(document, list) and len(document) == 1 and isinstance(document[0], str):
        document = document[0]
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            document = {"tests": document}
    if isinstance(document, list) and document and all(isinstance(t, str) for t in document):
        document = {"tests": document}
    if not isinstance(document, dict):
        raise BadReference("expected a JSON object with inputs/outputs or tests")
    if "tests" in document:
        tests = _assert_tests(document["tests"], document.get("setup") or "")
    elif "inputs" in document and "outputs" in document:
        tests = _io_tests(document)
    else:
        raise BadReference("the reference has neither `tests` nor `inputs` and `outputs`")
    if not tests:
        raise BadReference("the reference holds no test")
    return tests


def _io_tests(document: dict[str, Any]) -> list[CodeTest]:
    inputs, outputs = document["inputs"], document["outputs"]
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise BadReference("`inputs` and `outputs` must be lists")
    if len(inputs) != len(outputs):
        raise BadReference(f"{len(inputs)} inputs but {len(outputs)} outputs")
    fn_name = document.get("fn_name")
    if fn_name:
        if not isinstance(fn_name, str) or not fn_name.isidentifier():
            raise BadReference(f"fn_name {fn_name!r} is not a Python name")
        return [
            CodeTest("call", args=tuple(a) if isinstance(a, list) else (a,), fn_name=fn_name,
                     expected=o)
            for a, o in zip(inputs, outputs, strict=True)
        ]
    return [
        CodeTest("stdio", stdin=_as_text(i, "input"), expected=_as_text(o, "output"))
        for i, o in zip(inputs, outputs, strict=True)
    ]


def _as_text(value: Any, what: str) -> str:
    """A stdin/stdout test text; a list of lines (some data sets store them so) is joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value) + "\n"
    raise BadReference(f"a stdin/stdout {what} must be a string, got {type(value).__name__}")


def _assert_tests(tests: Any, setup: str) -> list[CodeTest]:
    if not isinstance(setup, str):
        raise BadReference("`setup` must be a string")
    prefix = setup + "\n" if setup else ""
    if isinstance(tests, list):
        if not all(isinstance(t, str) for t in tests):
            raise BadReference("`tests` must be a string or a list of strings")
        return [CodeTest("assert", code=prefix + t) for t in tests if t.strip()]
    if not isinstance(tests, str):
        raise BadReference("`tests` must be a string or a list of strings")
    return [CodeTest("assert", code=prefix + code) for code in split_asserts(tests)]


def split_asserts(source: str) -> list[str]:
    """One test per top-level assert, each with the other statements before it."""
    try:
        module = ast.parse(source)
    except SyntaxError:
        return [source] if source.strip() else []
    prelude: list[str] = []
    tests: list[str] = []
    for node in module.body:
        text = ast.get_source_segment(source, node) or ""
        if isinstance(node, ast.Assert):
            tests.append("\n".join([*prelude, text]))
        else:
            prelude.append(text)
    if not tests:
        return [source] if source.strip() else []
    return tests


# ---------------------------------------------------------------------------------------
# Output comparison
# ---------------------------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _close(a: float, b: float, tolerance: float) -> bool:
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


def _token_match(got: str, expected: str, tolerance: float) -> bool:
    if got == expected:
        return True
    try:
        return _close(float(got), float(expected), tolerance)
    except ValueError:
        return False


def outputs_match(got: str, expected: str, tolerance: float) -> bool:
    """Printed output against the expected text (see the module docstring)."""
    got_lines, expected_lines = _lines(got), _lines(expected)
    if len(got_lines) != len(expected_lines):
        return False
    for got_line, expected_line in zip(got_lines, expected_lines, strict=True):
        if got_line == expected_line:
            continue
        got_tokens, expected_tokens = got_line.split(), expected_line.split()
        if len(got_tokens) != len(expected_tokens) or not all(
            _token_match(g, e, tolerance) for g, e in zip(got_tokens, expected_tokens, strict=True)
        ):
            return False
    return True


def values_match(got: Any, expected: Any, tolerance: float) -> bool:
    """A returned value (as JSON) against the expected one, numbers within tolerance."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return got is expected
    if isinstance(got, int | float) and isinstance(expected, int | float):
        return _close(float(got), float(expected), tolerance)
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(
            values_match(g, e, tolerance) for g, e in zip(got, expected, strict=True)
        )
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(
            values_match(got[k], expected[k], tolerance) for k in got
        )
    return bool(got == expected)


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestOutcome:
    passed: bool
    kind: FailureKind | None = None
    detail: str = ""


def _service_settings() -> Settings:
    """The settings the service was started with (adopted by each worker process)."""
    return settings_module.active()


def sandbox_setup(settings: Settings) -> tuple[sandbox.Limits, sandbox.SandboxConfig]:
    """The sandbox limits (time fields are set per item) and config of the settings."""
    limits = sandbox.Limits(
        memory_bytes=settings.code_memory_mb * 2**20,
        processes=settings.code_processes,
        file_size_bytes=settings.code_file_bytes,
        open_files=settings.code_open_files,
        output_bytes=settings.code_output_bytes,
    )
    config = sandbox.SandboxConfig(settings.code_python, settings.code_uid, settings.code_gid)
    return limits, config


def run_tests(
    program: str, tests: list[CodeTest], options: Options, limits: sandbox.Limits,
    config: sandbox.SandboxConfig,
) -> list[TestOutcome]:
    """Run the tests in one sandbox (a forked child per test, see `code_harness`).

    Returns one outcome per test that ran, in order; tests cut off by the item budget or
    skipped after a failure are absent. Raises `sandbox.SandboxUnavailable`.
    """
    nonce = secrets.token_hex(16)
    mode = tests[0].mode
    job = {
        "mode": mode, "nonce": nonce, "time_limit_s": min(options.time_limit_s, limits.wall_s),
        "output_bytes": limits.output_bytes, "stop_at_first_failure": options.stop_at_first_failure,
        "tests": [_job_test(t) for t in tests],
    }  # fmt: skip
    files = {
        "harness.py": _HARNESS,
        "solution.py": program.encode("utf-8", "replace"),
        "job.json": json.dumps(job).encode(),
    }
    reader = _ReportReader(nonce, tests, options)
    run = sandbox.run_python(
        "harness.py", files, b"", limits, config,
        until=lambda chunk: reader.feed(chunk) and options.stop_at_first_failure,
    )
    outcomes = reader.outcomes
    if len(outcomes) < len(tests) and (not outcomes or outcomes[-1].passed):
        # The run ended before the next test finished: say why, against that test.
        if run.kind in ("timeout", "memory", "output_limit"):
            why = {"timeout": "the item's time budget is spent", "memory": "over the memory "
                   "limit", "output_limit": "over the output limit"}[run.kind]
            outcomes.append(TestOutcome(False, run.kind, why))  # type: ignore[arg-type]
        elif run.kind != "stopped":
            outcomes.append(TestOutcome(False, "runtime_error",
                                        f"no result from the test harness (it {run.kind}, "
                                        f"status {run.exit_code}): the program killed it or "
                                        "flooded its channel"))
    return outcomes


def _job_test(test: CodeTest) -> dict[str, Any]:
    if test.mode == "stdio":
        return {"stdin": test.stdin}
    if test.mode == "call":
        return {"fn_name": test.fn_name, "args": list(test.args)}
    return {"code": test.code}


class _ReportReader:
    """Turns the harness's report lines into outcomes as they arrive (see `code_harness`)."""

    def __init__(self, nonce: str, tests: list[CodeTest], options: Options) -> None:
        self.prefix = nonce.encode() + b" "
        self.tests = tests
        self.options = options
        self.outcomes: list[TestOutcome] = []
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no newline
        self._child: dict[int, dict[str, Any]] = {}

    def feed(self, chunk: bytes) -> bool:
        """Take more report bytes; True once a test failed (the caller may stop the run).

        Linear in what arrives, even when a program floods the channel with one long line.
        """
        self._buffer += chunk
        end = self._buffer.rfind(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buffer)
            return False
        lines = bytes(self._buffer[:end]).split(b"\n")
        del self._buffer[: end + 1]
        self._scanned = 0
        for line in lines:
            fields = self._decode(line)
            if fields is None:
                continue
            index = fields.get("test")
            if not isinstance(index, int) or index != len(self.outcomes):
                continue
            if "kind" in fields:
                self._child[index] = fields
            elif "status" in fields and index < len(self.tests):
                self.outcomes.append(self._judge(self.tests[index], fields,
                                                 self._child.get(index)))
        return any(not outcome.passed for outcome in self.outcomes)

    def _decode(self, line: bytes) -> dict[str, Any] | None:
        if not line.startswith(self.prefix):
            return None
        try:
            value = json.loads(line[len(self.prefix) :])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _judge(
        self, test: CodeTest, parent: dict[str, Any], child: dict[str, Any] | None
    ) -> TestOutcome:
        tolerance = self.options.float_tolerance
        if parent.get("timeout"):
            return TestOutcome(False, "timeout", f"over {self.options.time_limit_s:g} s")
        if parent.get("output_limit"):
            return TestOutcome(False, "output_limit", "printed over the output limit")
        status = parent.get("status")
        if not isinstance(status, int):
            return TestOutcome(False, "runtime_error", "no exit status")
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                return TestOutcome(False, "timeout", f"over {self.options.time_limit_s:g} s CPU")
            if sig == signal.SIGXFSZ:
                return TestOutcome(False, "output_limit", "wrote a file over the size limit")
            return TestOutcome(False, "runtime_error", f"killed by {signal.Signals(sig).name}")
        if child is not None and child.get("kind") != "ok":
            kind = child.get("kind")
            kind = kind if kind in ("wrong_answer", "memory") else "runtime_error"
            detail = str(child.get("error", ""))
            if kind == "wrong_answer" and test.mode == "assert":
                detail = f"{_clip(test.code.strip().splitlines()[-1])} failed"
            return TestOutcome(False, kind, detail)  # type: ignore[arg-type]
        if os.WEXITSTATUS(status) != 0:
            return TestOutcome(False, "runtime_error",
                               f"exit status {os.WEXITSTATUS(status)}")
        if test.mode == "stdio":
            # No child line with exit 0: the program ended with os._exit(0); output counts.
            got = str(parent.get("stdout", ""))
            if outputs_match(got, test.expected, tolerance):
                return TestOutcome(True)
            return TestOutcome(False, "wrong_answer",
                               f"printed {_clip(got)!r}, expected {_clip(test.expected)!r}")
        if child is None:
            return TestOutcome(False, "runtime_error", "the program exited before the test ran")
        if test.mode == "call":
            returned, expected = child.get("result"), test.expected
            if values_match(returned, expected, tolerance) or (
                isinstance(expected, list) and len(expected) == 1
                and values_match(returned, expected[0], tolerance)
            ):
                return TestOutcome(True)
            return TestOutcome(False, "wrong_answer", f"returned {_clip(repr(returned))}, "
                               f"expected {_clip(repr(expected))}")
        return TestOutcome(True)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def compare(
    extracted: str, reference: Reference, options: Options, context: ItemContext
) -> Verdict:
    del context
    try:
        tests = parse_tests(reference)
    except (BadReference, TypeError) as exc:
        return Verdict(0.0, status="error", message=f"unreadable general-code reference: {exc}")
    settings = _service_settings()
    base_limits, config = sandbox_setup(settings)
    budget = settings.code_item_budget_s
    report_bytes = min(64 * 2**20, (2 * base_limits.output_bytes + 4096) * len(tests))
    limits = replace(base_limits, wall_s=budget, cpu_s=budget, report_bytes=report_bytes)
    try:
        outcomes = run_tests(extracted, tests, options, limits, config)
    except sandbox.SandboxUnavailable as exc:
        return Verdict(0.0, status="error", message=f"code sandbox unavailable: {exc}")
    if options.stop_at_first_failure:
        outcomes = outcomes[: next((i + 1 for i, o in enumerate(outcomes) if not o.passed),
                                   len(outcomes))]
    passed = sum(outcome.passed for outcome in outcomes)
    failures = [(i, o) for i, o in enumerate(outcomes) if not o.passed]
    first_failure = None
    if failures:
        index, outcome = failures[0]
        first_failure = f"{outcome.kind} on test {index + 1} of {len(tests)}: {outcome.detail}"
    elif len(outcomes) < len(tests):
        first_failure = f"timeout on test {len(outcomes) + 1} of {len(tests)}: not reached"
    total = len(tests)
    score = passed / total if options.partial_credit else float(passed == total)
    components = {"tests_passed": float(passed), "tests_total": float(total)}
    return Verdict(score, components, message=first_failure or f"all {total} tests passed")

