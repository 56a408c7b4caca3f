"""A GRPO-shaped load for the reward stack: concurrent clients posting mixed batches, every
request's outcome recorded, every result checkable against the in-process engine.

A request holds `groups` prompts x `samples` responses; a group repeats a few distinct
answers, as a policy's samples do. Cheap answer types and math draw fresh random golds (so
replicas keep verifying, not only reading caches); `svg-code` and `html-code` draw from a
fixed pool of drawings and pages with variants (renders are the expensive part);
`general-code` runs fresh small programs against asserts in the bubblewrap sandbox.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from reward_server.engine import Engine
from reward_server.settings import Settings
from reward_server.types import ScoreItem, ScoreResult, canonical_json

Item = dict[str, Any]

_SVG = ("<svg xmlns='http://www.w3.org/2000/svg' width='120' height='120'>"
        "<rect width='120' height='120' fill='white'/>{}</svg>")
_HTML = ("<!DOCTYPE html><html><head><style>body{{font-family:sans-serif;margin:24px}}"
         ".card{{border:2px solid {color};padding:12px}}</style></head><body>"
         "<h1>{title}</h1><div class='card'><p>{text}</p><button>{button}</button></div>"
         "</body></html>")
_WORDS = ("river", "lamp", "orange", "seven", "quiet", "market", "engine", "violet")


def _simple(rng: random.Random) -> tuple[str, Any, list[str]]:
    kind = rng.choice(["multiple-choice", "number", "boolean", "ocrtext", "bbox", "any",
                       "critic"])
    if kind == "multiple-choice":
        gold = rng.choice("ABCD")
        return kind, gold, [gold, rng.choice("ABCD"), f"({gold})", f"The answer is {gold}"]
    if kind == "number":
        gold = rng.randint(0, 10**6)
        return kind, str(gold), [str(gold), str(gold + 1), f"{gold:,} apples", "twelve"]
    if kind == "boolean":
        return kind, rng.choice(["yes", "no"]), ["yes", "no", "Yes.", "I don't know"]
    if kind == "ocrtext":
        gold = f"invoice {rng.randint(10**5, 10**6)}"
        return kind, [gold, "total due"], [gold, gold.upper(), gold[:-1], "something else"]
    if kind == "bbox":
        x, y = round(rng.random() * 0.5, 3), round(rng.random() * 0.5, 3)
        gold = [x, y, round(x + 0.3, 3), round(y + 0.3, 3)]
        return kind, gold, [str(gold), str([round(v + 0.02, 3) for v in gold]), "[0, 0, 1, 1]"]
    word = rng.choice(_WORDS) + str(rng.randint(0, 10**6))
    return kind, word, [word, word.upper(), "dog"]  # `any` ignores case, `critic` does not


def _math(rng: random.Random) -> tuple[str, Any, list[str]]:
    a, b = rng.randint(1, 97), rng.randint(2, 89)
    if math.gcd(a, b) != 1:
        return "math-expressions", str(a * b), [str(a * b), f"{a} \\times {b}", str(a * b + 1)]
    return "math-expressions", f"\\frac{{{a}}}{{{b}}}", [
        f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}", f"\\frac{{{2 * a}}}{{{2 * b}}}", f"{a / b:.2f}",
        f"\\frac{{{b}}}{{{a}}}",
    ]


def _svg(rng: random.Random) -> tuple[str, Any, list[str]]:
    r, color = rng.choice([20, 30, 40]), rng.choice(["red", "blue", "green"])
    gold = _SVG.format(f"<circle cx='60' cy='60' r='{r}' fill='{color}'/>")
    return "svg-code", gold, [
        gold,
        _SVG.format(f"<circle cx='60' cy='60' r='{r + 4}' fill='{color}'/>"),
        _SVG.format(f"<rect x='30' y='30' width='{2 * r}' height='{2 * r}' fill='{color}'/>"),
        _SVG.format(""),
    ]


def _html(rng: random.Random) -> tuple[str, Any, list[str]]:
    title = rng.choice(["Bakery", "Login", "Pricing"])
    text = rng.choice(["Fresh bread every morning.", "Sign in to continue."])
    gold = _HTML.format(color="navy", title=title, text=text, button="Go")
    return "html-code", gold, [
        gold,
        _HTML.format(color="navy", title=title, text=text.upper(), button="Go"),
        _HTML.format(color="crimson", title=title + "!", text=text, button="Submit"),
        "<html><body><div><p></p></div></body></html>",
    ]


def _fresh_html(rng: random.Random) -> tuple[str, Any, list[str]]:
    """A page no cache knows: each answer is rendered."""
    answer_type, _, _ = _html(rng)
    title = f"{rng.choice(_WORDS).title()} {rng.randint(0, 10**9)}"
    gold = _HTML.format(color="teal", title=title, text="Opening hours today.", button="Go")
    return answer_type, gold, [
        gold,
        _HTML.format(color="teal", title=title.upper(), text="Opening hours.", button="Go"),
        _HTML.format(color="olive", title=title, text="Closed today.", button="Book"),
    ]


def _code(rng: random.Random) -> tuple[str, Any, list[str]]:
    a, b = rng.randint(2, 999), rng.randint(-50, 50)
    tests = [f"assert scale({x}) == {x * a + b}" for x in (0, 1, rng.randint(2, 99))]
    return "general-code", tests, [
        f"```python\ndef scale(x):\n    return x * {a} + {b}\n```",
        f"```python\ndef scale(x):\n    return {a} * x + ({b})\n```",
        f"```python\ndef scale(x):\n    return x * {a}\n```",
        "```python\ndef scale(x) return x\n```",
    ]


# The verifiers' own time limits (Math-Verify's 3 s, a page's 2 s to load or capture) fire
# on easy items when a shared 2-core machine is starved, and a timed-out verdict differs
# between replicas: compared verdicts must not depend on the machine's load.
LOAD_PROOF_OPTIONS: dict[str, dict[str, Any]] = {
    "math-expressions": {"sympy_timeout_s": 60},
    "html-code": {"render_timeout_s": 30.0},
    "general-code": {"time_limit_s": 30.0},
}

KINDS: dict[str, Callable[[random.Random], tuple[str, Any, list[str]]]] = {
    "simple": _simple, "math": _math, "svg": _svg, "html": _html, "code": _code,
    "fresh-html": _fresh_html,
}


def grpo_batch(rng: random.Random, groups: int = 2, samples: int = 8,
               weights: Sequence[float] = (0.4, 0.25, 0.15, 0.1, 0.1)) -> list[Item]:
    """`groups` prompts x `samples` responses each; weights over `KINDS` in order
    (simple, math, svg, html, code, fresh-html; missing ones are 0)."""
    weights = [*weights, *[0.0] * (len(KINDS) - len(weights))]
    items: list[Item] = []
    for _ in range(groups):
        kind = rng.choices(list(KINDS), weights=weights)[0]
        answer_type, gold, answers = KINDS[kind](rng)
        distinct = answers[: rng.randint(2, len(answers))]
        prompt_type = rng.choice(["normal", "cot"])
        for _ in range(samples):
            text = rng.choice(distinct)
            think = "<think>Look at it closely.</think>" if prompt_type == "cot" else ""
            item = {"answer_type": answer_type, "answer": gold, "prompt_type": prompt_type,
                    "response": f"{think}<answer>{text}</answer>"}
            if answer_type in LOAD_PROOF_OPTIONS:
                item["options"] = LOAD_PROOF_OPTIONS[answer_type]
            items.append(item)
    return items


def item_key(item: Item) -> str:
    return canonical_json([item["answer_type"], item["response"], item["answer"],
                           item.get("prompt_type"), item.get("options")])


@dataclass
class Outcome:
    """One request: when it was sent, whether and what it answered."""

    started: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)  # sent as X-Request-Id
    sent: float | None = None  # the whole request was written to the socket
    finished: float = 0.0
    items: list[Item] = field(default_factory=list)
    status_code: int | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    replica: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code == 200 and len(self.results) == len(self.items)


async def _client(url: str, seed: int, stop: asyncio.Event, outcomes: list[Outcome],
                  make_batch: Callable[[random.Random], list[Item]], new_connections: bool
                  ) -> None:
    rng = random.Random(seed)
    limits = httpx.Limits(max_keepalive_connections=0 if new_connections else 4)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:
        while not stop.is_set():
            outcome = Outcome(started=time.monotonic(), items=make_batch(rng))

            async def trace(event: str, _info: dict[str, Any], o: Outcome = outcome) -> None:
                if event == "http11.send_request_body.complete":
                    o.sent = time.monotonic()

            outcomes.append(outcome)
            try:
                response = await client.post("/score", json={"items": outcome.items},
                                             headers={"x-request-id": outcome.id},
                                             extensions={"trace": trace})
                outcome.status_code = response.status_code
                outcome.replica = response.headers.get("x-reward-replica")
                if response.status_code == 200:
                    outcome.results = response.json()["results"]
                else:
                    outcome.error = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.finished = time.monotonic()


class Load:
    """`clients` concurrent clients posting until `stop()` (or `duration_s`)."""

    def __init__(self, url: str, clients: int = 8, seed: int = 0,
                 make_batch: Callable[[random.Random], list[Item]] = grpo_batch,
                 new_connections: bool = False) -> None:
        self.url = url
        self.clients = clients
        self.seed = seed
        self.make_batch = make_batch
        self.new_connections = new_connections
        self.outcomes: list[Outcome] = []
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, duration_s: float | None = None) -> list[Outcome]:
        tasks = [asyncio.create_task(_client(self.url, self.seed * 1000 + n, self._stop,
                                             self.outcomes, self.make_batch,
                                             self.new_connections))
                 for n in range(self.clients)]
        if duration_s is not None:
            await asyncio.sleep(duration_s)
            self.stop()
        await asyncio.gather(*tasks)
        return self.outcomes


class InProcessReference:
    """The verdicts of an in-process engine for the items a load sent, computed once per
    distinct item (the same code the image runs, on this machine)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = Engine(settings)
        self.known: dict[str, ScoreResult] = {}

    def close(self) -> None:
        self.engine.close()

    def results_for(self, items: Sequence[Item]) -> list[ScoreResult]:
        missing = {item_key(i): i for i in items if item_key(i) not in self.known}
        batch = list(missing.values())
        for start in range(0, len(batch), 256):
            chunk = batch[start : start + 256]
            scored = self.engine.score_sync([ScoreItem(**i) for i in chunk])
            self.known.update((item_key(i), r) for i, r in zip(chunk, scored, strict=True))
        return [self.known[item_key(i)] for i in items]

    def mismatches(self, outcomes: Sequence[Outcome], tolerance: float = 1e-6) -> list[str]:
        """Every answered result that differs from the in-process verdict, described."""
        answered = [o for o in outcomes if o.ok]
        items = [i for o in answered for i in o.items]
        expected = self.results_for(items)
        got = [r for o in answered for r in o.results]
        problems = []
        for item, want, have in zip(items, expected, got, strict=True):
            if not _same(want.to_dict(), have, tolerance):
                problems.append(f"{item['answer_type']} {item['response'][:60]!r}: "
                                f"in process {want.to_dict()}, stack {have}")
        return problems


def _same(want: dict[str, Any], have: dict[str, Any], tolerance: float) -> bool:
    for name in ("status", "extracted", "error"):
        if want[name] != have[name]:
            return False
    numbers = {"reward": (want["reward"], have["reward"]),
               "acc_reward": (want["acc_reward"], have["acc_reward"]),
               "format_reward": (want["format_reward"], have["format_reward"])}
    if set(want["components"]) != set(have["components"]):
        return False
    numbers.update({k: (v, have["components"][k]) for k, v in want["components"].items()})
    return all(abs(a - b) <= tolerance for a, b in numbers.values())
