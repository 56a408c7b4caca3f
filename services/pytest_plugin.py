"""The known-answer suite as a pytest entry, for a deployment's own CI.

    pytest --reward-url http://host:8000 [--reward-answer-types number,bbox]
           [--reward-transport http|grpc] [--reward-timeout S] [--reward-retries N]
           [--reward-min-agreement [TYPE=]FRACTION ...]

Installed with the package (a `pytest11` entry point), so the options exist wherever
`reward-server` is installed. Given `--reward-url`, pytest also collects
`services/known_answer_suite.py`: one test per answer type, each failing with the list of
its disagreements. Without it, this plugin adds nothing to a run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.validate_defaults import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, TRANSPORTS

SUITE = Path(__file__).resolve().with_name("known_answer_suite.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reward-server", "known answers against a reward deployment")
    group.addoption("--reward-url", help="run the known-answer suite against this deployment")
    group.addoption("--reward-answer-types", default="", metavar="T1,T2",
                    help="only these answer types, comma-separated (default: all)")
    group.addoption("--reward-transport", choices=TRANSPORTS,
                    help="default: gRPC for a grpc:// URL, else HTTP")
    group.addoption("--reward-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                    help="limit of one request, in seconds")
    group.addoption("--reward-retries", type=int, default=DEFAULT_RETRIES,
                    help="times an item that timed out or failed in transport is resent")
    group.addoption("--reward-min-agreement", action="append", default=[],
                    metavar="[TYPE=]FRACTION",
                    help="pass a type when this share of its rows agrees (default: every "
                    "row this version gets right)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("reward_url") and str(SUITE) not in config.args:
        config.args.append(str(SUITE))
