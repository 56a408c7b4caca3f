"""Each adapter against the real server process, called the way its framework calls it
(shapes in `framework_shapes.py`)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import pickle
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from reward_client import areal, batching, openrlhf, slime, trl, verl
from reward_client.items import UNSCORED, strip_special_tokens
from tests.reward_client.framework_shapes import SlimeArgs, SlimeSample
from tests.services.server_process import running_server

LABEL = {"answer": "4", "answer_type": "number"}
# a box reference that is not a box: the verifier reports `error` (a fault, not a reward)
BAD_REFERENCE = {"answer": "not a box", "answer_type": "bbox"}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_server({"REWARD_WORKERS": "2"}) as base_url:
        yield base_url


@pytest.fixture(autouse=True)
def _env(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARD_URL", url)


@pytest.mark.parametrize("text,expected", [
    ("<answer>4</answer><|im_end|>", "<answer>4</answer>"),
    ("<answer>4</answer> <|im_end|>\n<|endoftext|>", "<answer>4</answer>"),
    ("<answer>4</answer></s>", "<answer>4</answer>"),
    ("<answer>4</answer>\n", "<answer>4</answer>\n"),  # nothing to strip: unchanged
    ("<|im_end|> inside <answer>4</answer>", "<|im_end|> inside <answer>4</answer>"),
])
def test_trailing_special_tokens_are_dropped(text: str, expected: str) -> None:
    assert strip_special_tokens(text) == expected


def test_verl_sync_has_the_same_keys_for_every_sample(url: str) -> None:
    right = verl.compute_score("counting", "<answer>4</answer><|im_end|>", "4",
                               {"answer_type": "number"}, url=url)
    wrong = verl.compute_score("geo", "<answer>5</answer>", json.dumps(LABEL), None, url=url)
    typed = verl.compute_score("mmbench", "<answer>B</answer>", "B", {},
                               answer_types={"mmbench": "multiple-choice"}, url=url)
    faulty = verl.compute_score("refcoco", "<answer>[1, 2, 3, 4]</answer>", BAD_REFERENCE,
                                None, url=url, unscored_value=-1.0)
    assert set(right) == set(wrong) == set(typed) == set(faulty)
    assert (right["score"], right["format_reward"], right["scored"]) == (1.0, 1.0, 1.0)
    assert right["component_accuracy"] == 1.0
    assert wrong["score"] == 0.0 and typed["score"] == 1.0
    assert (faulty["score"], faulty["scored"]) == (-1.0, 0.0)


def test_verl_async_from_many_tasks(url: str) -> None:
    async def run() -> list[dict[str, float]]:
        return await asyncio.gather(*(
            verl.compute_score_async("c", f"<answer>{i % 5}</answer>", "4",
                                     {"answer_type": "number"}, url=url)
            for i in range(40)))

    scores = asyncio.run(run())
    assert [s["score"] for s in scores] == [1.0 if i % 5 == 4 else 0.0 for i in range(40)]


def test_trl_reward_function_with_columns_and_conversations(url: str) -> None:
    reward = trl.reward_func(url, answer_type="number")
    prompts = [[{"role": "user", "content": "How many?"}]] * 3
    completions = [[{"role": "assistant", "content": "<answer>4</answer>"}],
                   [{"role": "assistant", "content": [{"type": "text",
                                                       "text": "<answer>3</answer>"}]}],
                   [{"role": "assistant", "content": "<answer>[1, 2, 3, 4]</answer>"}]]
    logged: dict[str, float] = {}
    rewards = asyncio.run(reward(
        prompts=prompts, completions=completions, completion_ids=[[1], [2], [3]],
        answer=["4", "4", "not a box"], answer_type=[None, None, "bbox"],
        trainer_state=None, log_metric=lambda k, v: logged.__setitem__(k, v)))
    assert rewards == [1.0, 0.0, None]
    assert logged["reward_server/unscored"] == 1.0 and logged["reward_server/acc_reward"] == 0.5


def test_areal_reward_fn_is_picklable_and_returns_floats(url: str) -> None:
    fn = pickle.loads(pickle.dumps(areal.reward_fn))
    assert fn("prompt", "<answer>4</answer>", [1], [2], answer=["4"],
              answer_type="number") == 1.0
    as_dict = areal.reward_fn_dict("p", "<answer>5</answer>", None, None, answer="4",
                                   answer_type="number")
    assert as_dict == {"reward": 0.0, "acc_reward": 0.0, "format_reward": 1.0, "scored": 1.0}


def test_slime_custom_rm_and_group_rm(url: str) -> None:
    args = SlimeArgs(rm_url=url + "/slime")
    sample = SlimeSample("prompt", "<answer>4</answer><|im_end|>", "4",
                         {"answer_type": "number"})
    assert asyncio.run(slime.custom_rm(args, sample)) == 1.0
    group = [SlimeSample("p", f"<answer>{i}</answer>", json.dumps(LABEL)) for i in range(3, 6)]
    assert asyncio.run(slime.custom_group_rm(SlimeArgs(), group)) == [0.0, 1.0, 0.0]


def test_openrlhf_reward_func_loaded_from_its_file(url: str) -> None:
    # OpenRLHF imports the file given as --reward.remote_url and calls reward_func
    spec = importlib.util.spec_from_file_location("reward_func", openrlhf.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    prompt = "<|im_start|>user\nHow many?<|im_end|>\n<|im_start|>assistant\n"
    out = module.reward_func([prompt + "<answer>4</answer><|im_end|>", prompt + "<answer>2"],
                             [prompt, prompt], [LABEL, json.dumps(LABEL)])
    assert out["rewards"].tolist() == [1.0, 0.0]
    assert out["extra_logs"]["format_reward"].tolist() == [1.0, 0.0]


def test_concurrent_single_calls_are_coalesced(url: str) -> None:
    coalescer = batching.Coalescer(url, max_delay_s=0.05)
    results: list[float] = [0.0] * 64

    def call(i: int) -> None:
        item = {"answer_type": "number", "response": f"<answer>{i % 4}</answer>", "answer": "3"}
        results[i] = coalescer.score_one(item)["reward"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    coalescer.close()
    assert results == [1.0 if i % 4 == 3 else 0.0 for i in range(64)]
    assert coalescer.stats.calls == 64 and coalescer.stats.requests <= 4


def test_coalesced_requests_share_one_connection(url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    coalescer = batching.Coalescer(url, max_delay_s=0.001)
    opened = []
    connect = coalescer.client.connect
    monkeypatch.setattr(coalescer.client, "connect", lambda: opened.append(1) or connect())
    item = {"answer_type": "number", "response": "<answer>3</answer>", "answer": "3"}
    try:
        for _ in range(3):  # one after the other: three requests
            assert coalescer.score_one(item, timeout_s=30)["reward"] == 1.0
    finally:
        coalescer.close()
    assert coalescer.stats.requests == 3 and len(opened) == 1


def test_a_closed_coalescer_fails_its_callers_instead_of_hanging() -> None:
    fds = len(os.listdir("/proc/self/fd"))
    # nothing listens there, and the delay keeps the item waiting until the close
    coalescer = batching.Coalescer("http://127.0.0.1:9", max_delay_s=60)
    item = {"answer_type": "number", "response": "<answer>3</answer>", "answer": "3"}
    waiting = ThreadPoolExecutor(1).submit(coalescer.score_one, item, 10)
    while coalescer.stats.calls == 0:
        time.sleep(0.01)
    coalescer.close()
    with pytest.raises(RuntimeError, match="closed before the item was scored"):
        waiting.result(timeout=5)
    with pytest.raises(RuntimeError, match="is closed"):
        coalescer.score_one(item, timeout_s=5)
    assert len(os.listdir("/proc/self/fd")) == fds  # the loop's own fds closed too


def test_unscored_items_are_counted(url: str) -> None:
    before = UNSCORED.total()
    assert areal.reward_fn("p", "<answer>[1, 2, 3, 4]</answer>", None, None,
                           **BAD_REFERENCE) == areal.UNSCORED_VALUE
    assert UNSCORED.total() == before + 1
