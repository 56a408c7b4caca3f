"""`general-code`: extraction, reference formats, output comparison, the labelled corpus,
and the engine path (hostile items, sandbox unavailable, the worker killed mid-run)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pebble import ProcessPool

from reward_server import registry
from reward_server import settings as settings_module
from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ItemContext, Reference, ScoreItem, Verdict
from reward_server.verifiers import general_code

CORPUS = Path(__file__).parents[2] / "data" / "general_code.jsonl"
KNOWN = Path(__file__).parents[3] / "reward_server" / "known_answers" / "general_code.jsonl"
ADD_IO = json.dumps({"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]})


def verdict(response: str, reference: Reference, **options: Any) -> Verdict:
    opts = registry.build_options("general-code", options)
    extracted = general_code.extract(response, opts, ItemContext())
    assert extracted is not None
    return general_code.compare(extracted, reference, opts, ItemContext())


@pytest.mark.parametrize(
    "response,expected",
    [
        ("<answer>print(1)</answer>", "print(1)"),  # no fence: the text
        ("<answer>```python\nprint(1)\n```</answer>", "print(1)"),  # fenced
        ("<answer>```\na\n```\ntext\n```py\nb\n```</answer>", "b"),  # the last fence
        ("<answer>x</answer> <answer>```python\nprint(2)\n```</answer>", "print(2)"),  # last tag
        ("```python\nprint(1)\n```", None),  # no tag: no answer (strict)
        ("<answer>   </answer>", None),
    ],
)
def test_extract(response: str, expected: str | None) -> None:
    opts = registry.build_options("general-code", {})
    assert general_code.extract(response, opts, ItemContext()) == expected


def test_extract_lenient_takes_a_fence_without_tags() -> None:
    opts = registry.build_options("general-code", {"strict_tags": False})
    assert general_code.extract("Sure:\nprint(3)", opts, ItemContext()) == "print(3)"


@pytest.mark.parametrize(
    "reference,modes",
    [
        (ADD_IO, ["stdio", "stdio"]),  # a JSON document
        ([ADD_IO], ["stdio", "stdio"]),  # as data rows store it: a one-element list
        (json.dumps({"fn_name": "f", "inputs": [[1, 2]], "outputs": [3]}), ["call"]),
        (["assert f(1) == 2", "assert f(2) == 3"], ["assert", "assert"]),  # list of asserts
        ("assert f(1) == 2\nassert f(2) == 3", ["assert", "assert"]),  # plain assert text
        # HumanEval: a check function, then its call: one test
        (json.dumps({"tests": "def check(c):\n    assert c(1)\ncheck(f)"}), ["assert"]),
        (json.dumps({"inputs": [["1 2", "3"]], "outputs": [["3"]]}), ["stdio"]),  # line lists
    ],
)
def test_parse_tests(reference: Reference, modes: list[str]) -> None:
    assert [t.mode for t in general_code.parse_tests(reference)] == modes


def test_split_asserts_keeps_the_statements_before_each_assert() -> None:
    tests = general_code.split_asserts("import math\nassert f(1) == 1\nx = 2\nassert f(x) == 2")
    assert tests == ["import math\nassert f(1) == 1", "import math\nx = 2\nassert f(x) == 2"]


@pytest.mark.parametrize(
    "reference,why",
    [
        (json.dumps({"inputs": ["1"], "outputs": []}), "1 inputs but 0 outputs"),
        (json.dumps({"fn_name": "not a name", "inputs": [[1]], "outputs": [1]}), "not a Python"),
        (json.dumps({"something": 1}), "neither"),
        (json.dumps({"tests": []}), "no test"),
        (3, "JSON object"),
    ],
)
def test_unreadable_references_are_errors(reference: Reference, why: str) -> None:
    result = verdict("<answer>print(1)</answer>", reference)
    assert result.status == "error" and why in (result.message or "")


@pytest.mark.parametrize(
    "got,expected,match",
    [
        ("3\n", "3\n", True),
        ("3   \n\n\n", "3", True),  # trailing whitespace and blank lines ignored
        ("3\r\n4\r\n", "3\n4\n", True),  # CRLF
        ("0.30000000000000004\n", "0.3\n", True),  # numbers within the tolerance
        ("1e3\n", "1000\n", True),
        ("0.31\n", "0.3\n", False),
        (" 3\n", "3\n", True),  # tokens compared: leading spaces too
        ("3 4\n", "3\n4\n", False),  # lines count
        ("", "3\n", False),
        ("Yes\n", "YES\n", False),  # case counts
    ],
)
def test_outputs_match(got: str, expected: str, match: bool) -> None:
    assert general_code.outputs_match(got, expected, 1e-6) is match


def test_options_are_validated() -> None:
    with pytest.raises(registry.OptionsError, match="time_limit_s"):
        registry.build_options("general-code", {"time_limit_s": 0})


def test_verdict_shape_and_first_failure_message() -> None:
    ok = verdict("<answer>a, b = map(int, input().split())\nprint(a + b)</answer>", ADD_IO)
    assert (ok.score, ok.components) == (1.0, {"tests_passed": 2.0, "tests_total": 2.0})
    wrong = verdict("<answer>print(3)</answer>", ADD_IO)
    assert wrong.status == "ok" and wrong.score == 0.0
    assert wrong.components == {"tests_passed": 1.0, "tests_total": 2.0}
    assert (wrong.message or "").startswith("wrong_answer on test 2 of 2")
    partial = verdict("<answer>print(3)</answer>", ADD_IO, partial_credit=True)
    assert partial.score == 0.5


def test_stop_at_first_failure_skips_the_rest() -> None:
    tests = ["assert f() == 1", "assert f() == 2", "assert f() == 1"]
    stop = verdict("<answer>def f():\n    return 1</answer>", tests)
    assert stop.components["tests_passed"] == 1.0
    every = verdict("<answer>def f():\n    return 1</answer>", tests, stop_at_first_failure=False)
    assert every.components["tests_passed"] == 2.0


def test_the_item_budget_bounds_all_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(general_code, "_service_settings", lambda: Settings(code_item_limit_s=1.5))
    started = time.monotonic()
    result = verdict("<answer>import time\ntime.sleep(0.6)\nprint(3)</answer>",
                     json.dumps({"inputs": ["\n"] * 6, "outputs": ["3\n"] * 6}),
                     stop_at_first_failure=False)
    assert time.monotonic() - started < 3
    assert result.components["tests_passed"] < 6
    assert "timeout" in (result.message or "")


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process reads REWARD_CODE_* anew (workers adopt their engine's settings)."""
    monkeypatch.setattr(settings_module, "_ACTIVE", None)


def _corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


def test_corpus_is_big_labelled_and_a_third_failing() -> None:
    rows = _corpus()
    assert len(rows) >= 200
    assert sum(r["expected"] < 1 for r in rows) >= len(rows) / 3
    assert all(r["source"] and r["comment"] for r in rows)


def _disagreements(rows: list[dict[str, Any]]) -> list[str]:
    """Rows whose verdict differs from the label (score, status, first failure kind)."""

    def judge(row: dict[str, Any]) -> tuple[dict[str, Any], Verdict]:
        opts = registry.build_options("general-code", row.get("options"))
        extracted = general_code.extract(row["response"], opts, ItemContext())
        assert extracted is not None, row["comment"]
        return row, general_code.compare(extracted, row["answer"], opts, ItemContext())

    with ThreadPoolExecutor(4) as pool:
        judged = list(pool.map(judge, rows))
    return [
        f"{row['source']} / {row['comment']}: {result.score} ({result.message})"
        for row, result in judged
        if result.status != row.get("status", "ok")
        or abs(result.score - row["expected"]) > row.get("tolerance", 1e-6)
        or (row.get("failure") and not (result.message or "").startswith(row["failure"]))
    ]


def test_the_verifier_agrees_with_every_corpus_label() -> None:
    assert _disagreements(_corpus()) == []


def test_the_known_answer_rows_agree() -> None:
    rows = [json.loads(line) for line in KNOWN.read_text().splitlines() if line.strip()]
    assert len(rows) >= 10 and {r["status"] for r in rows} == {"ok", "error"}
    assert _disagreements(rows) == []


def test_engine_serves_hostile_items_and_keeps_serving() -> None:
    hostile = [
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "x = bytearray(10 * 2**30)",
        "import time\ntime.sleep(1e9)",
        "import ctypes\nctypes.string_at(0)",
        "import os\nos.kill(os.getppid(), 9)",  # kills the test harness: the test fails
    ]
    items = [ScoreItem("general-code", f"<answer>{src}</answer>", ["assert True"],
                       id=str(i), options={"time_limit_s": 1.0}) for i, src in enumerate(hostile)]
    items.append(ScoreItem("general-code", "<answer>def f():\n    return 1</answer>",
                           ["assert f() == 1"], id="good"))
    with Engine(Settings(workers=2, cache_size=0)) as engine:
        results = engine.score_sync(items)
        assert [r.status for r in results] == ["ok"] * len(items)
        assert [r.reward for r in results] == [0.0] * len(hostile) + [1.0]
        health = engine.health()["code_sandbox"]
        assert (health["available"], health["error"]) == (True, None)
        again = engine.score_sync(items[-1:])
        assert again[0].reward == 1.0


def test_no_sandbox_means_error_items_and_an_unavailable_health(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.setenv("REWARD_CODE_PYTHON", "/usr/bin/no-such-python")
    item = ScoreItem("general-code", "<answer>print(3)</answer>", ADD_IO)
    with Engine(Settings(workers=1, cache_size=0)) as engine:
        result = engine.score_sync([item])[0]
        health = engine.health()["code_sandbox"]
    assert result.status == "error" and result.reward == 0.0
    assert "code sandbox unavailable" in (result.error or "")
    assert "security_opt" in (result.error or "")
    assert health["available"] is False and "did not start" in health["error"]


def test_killing_the_worker_kills_its_sandbox(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    # A distinctive memory limit puts a marker in the argv of this test's sandboxes.
    monkeypatch.setenv("REWARD_CODE_MEMORY_MB", "517")
    marker = str(517 * 2**20).encode()
    opts = registry.build_options("general-code", {"time_limit_s": 3.0})
    with ProcessPool(max_workers=1) as pool:
        future = pool.schedule(general_code.compare, args=(
            "import time\ntime.sleep(1e9)", ["assert True"], opts, ItemContext()), timeout=1.5)
        time.sleep(0.8)
        assert _processes_with(marker), "the sandbox must be visible while the item runs"
        with pytest.raises(TimeoutError):
            future.result()
    time.sleep(0.3)
    assert _processes_with(marker) == []


def _processes_with(marker: bytes) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_expected_outputs_are_nowhere_in_the_sandbox() -> None:
    secret = "7c1d0e5a9b"  # the expected output the program hunts for
    reference = json.dumps({"inputs": ["\n"], "outputs": [secret + "\n"]})
    # The program spells the secret backwards, so its own source does not contain it.
    backwards = "'" + secret[::-1] + "'[::-1]"
    hunter = (
        "import os\nfound = any(" + backwards + " in v for v in os.environ.values())\n"
        "for root, dirs, files in os.walk('/'):\n"
        "    dirs[:] = [d for d in dirs if os.path.join(root, d) != '/usr']\n"
        "    for name in files:\n"
        "        if not os.path.isfile(os.path.join(root, name)):\n"
        "            continue  # devices\n"
        "        try:\n"
        "            with open(os.path.join(root, name), 'rb') as f:\n"
        "                found = found or " + backwards + ".encode() in f.read(1 << 20)\n"
        "        except OSError:\n"
        "            pass\n"
        "print('found' if found else 'absent')\n"
    )
    result = verdict(f"<answer>{hunter}</answer>", reference)
    assert result.score == 0.0
    assert "printed 'absent" in (result.message or "")


def test_flooding_the_report_channel_is_bounded_and_fails() -> None:
    flood = ("import os\nchunk = b'x' * 2**20\nfor _ in range(200):\n    os.write(3, chunk)\n"
             "a, b = map(int, input().split())\nprint(a + b)\n")
    started = time.monotonic()
    result = verdict(f"<answer>{flood}</answer>", ADD_IO)
    assert time.monotonic() - started < 6
    assert result.status == "ok" and result.score == 0.0


def test_the_engine_settings_reach_the_verifier_in_its_workers() -> None:
    """Settings given in code (not the environment) reach the sandbox in the workers: an
    output limit of 1024 bytes makes a correct but chatty program fail."""
    program = "print('x' * 2000)\na, b = map(int, input().split())\nprint(a + b)"
    reference = json.dumps({"inputs": ["1 2\n"], "outputs": ["x" * 2000 + "\n3\n"]})
    item = ScoreItem(answer_type="general-code", response=f"<answer>{program}</answer>",
                     answer=reference)
    rewards = []
    for limit in (1 << 20, 1024):
        with Engine(Settings(workers=1, code_output_bytes=limit, warm_up=False)) as engine:
            (result,) = engine.score_sync([item])
        rewards.append((result.status, result.reward))
    assert rewards == [("ok", 1.0), ("ok", 0.0)]
