"""Known answers against `--reward-url`: one test per answer type (see `pytest_plugin`).

The suite is run once per session (`services.validate.run_validation`); each answer
type's test passes when the type meets its threshold and otherwise fails with every
disagreement of the type.
"""

from __future__ import annotations

import pytest

from reward_server import known_answers
from reward_server.known_answers.report import Report
from services.validate import ValidationUnavailable, parse_min_agreement, run_validation


def _answer_types(config: pytest.Config) -> list[str] | None:
    listed = [name.strip() for name in config.getoption("reward_answer_types").split(",")]
    return [name for name in listed if name] or None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "answer_type" in metafunc.fixturenames:
        wanted = _answer_types(metafunc.config)
        names = sorted({row.answer_type for row in known_answers.load(wanted)})
        missing = sorted(set(wanted or ()) - set(names))
        if missing:
            raise pytest.UsageError(f"--reward-answer-types: no known answers for "
                                    f"{', '.join(missing)}")
        metafunc.parametrize("answer_type", names)


@pytest.fixture(scope="session")
def reward_report(pytestconfig: pytest.Config) -> Report:
    url = pytestconfig.getoption("reward_url")
    if not url:
        pytest.fail("the known-answer suite needs --reward-url URL", pytrace=False)
    try:
        min_agreement = parse_min_agreement(pytestconfig.getoption("reward_min_agreement"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        return run_validation(
            url,
            answer_types=_answer_types(pytestconfig),
            transport=pytestconfig.getoption("reward_transport"),
            timeout_s=pytestconfig.getoption("reward_timeout"),
            min_agreement=min_agreement,
            retries=pytestconfig.getoption("reward_retries"),
        )
    except ValidationUnavailable as exc:
        pytest.fail(f"cannot run the known-answer suite: {exc}", pytrace=False)


def test_known_answers(reward_report: Report, answer_type: str) -> None:
    summary = next(s for s in reward_report.summaries if s.answer_type == answer_type)
    if not summary.passed:
        lines = [
            f"{answer_type}: {summary.agreed}/{summary.rows} rows agree "
            f"(must agree: {summary.threshold_text})"
        ]
        for outcome in reward_report.disagreements:
            if outcome.row.answer_type == answer_type:
                mark = f" [xfail: {outcome.row.xfail}]" if outcome.row.xfail else ""
                lines.append(f"  {outcome.row.origin}: {outcome.disagreement}{mark}"
                             f" - {outcome.row.note}")
        pytest.fail("\n".join(lines), pytrace=False)
