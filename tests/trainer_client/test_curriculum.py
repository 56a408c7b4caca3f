"""Stage row selection and the batch sampler: exact mixing share, resumable cursor."""

from __future__ import annotations

import pytest

from trainer_client.curriculum import BatchSampler, stage_rows
from trainer_client.data import Row


def rows(prefix: str, n: int, prompt_type: str = "normal") -> list[Row]:
    return [Row(id=f"{prefix}{i}", problem="p", answer="1", answer_type="number",
                prompt_type=prompt_type) for i in range(n)]


def test_stage_rows_split_by_prompt_type() -> None:
    normal, cot = rows("n", 3), rows("c", 2, "long")
    assert stage_rows(1, normal + cot) == (normal, [])
    assert stage_rows(2, normal + cot) == (cot, normal)
    other = rows("o", 1)
    assert stage_rows(2, normal + cot, other) == (cot, other)


@pytest.mark.parametrize("share,per_step", [(0.1, 32), (0.1, 4), (0.25, 4), (0.3, 7)])
def test_mixed_share_is_exact_over_a_run(share: float, per_step: int) -> None:
    sampler = BatchSampler(rows("c", 50, "long"), per_step, seed=1, mixed=rows("n", 20),
                           mixed_share=share)
    batches = [sampler.next_batch() for _ in range(40)]
    assert all(len(b) == per_step for b in batches)
    mixed = sum(r.id.startswith("n") for b in batches for r in b)
    assert abs(mixed - share * per_step * 40) <= 0.5


def test_every_row_once_per_epoch_and_seeded_order() -> None:
    data = rows("c", 12)
    first = [r.id for _ in range(3) for r in BatchSampler(data, 4, seed=3).next_batch()]
    sampler = BatchSampler(data, 4, seed=3)
    epoch = [r.id for _ in range(3) for r in sampler.next_batch()]
    assert sorted(epoch) == sorted(r.id for r in data)
    assert epoch != [r.id for r in data]  # shuffled
    other = [r.id for _ in range(3) for r in BatchSampler(data, 4, seed=4).next_batch()]
    assert other != epoch
    assert first[:4] == epoch[:4]  # same seed, same order


def test_state_dict_resumes_with_the_next_batch() -> None:
    make = lambda: BatchSampler(rows("c", 10, "long"), 3, seed=5, mixed=rows("n", 4),  # noqa: E731
                                mixed_share=0.34)
    straight = make()
    expected = [[r.id for r in straight.next_batch()] for _ in range(9)]
    first = make()
    for _ in range(5):
        first.next_batch()
    resumed = make()
    resumed.load_state_dict(first.state_dict())
    assert [[r.id for r in resumed.next_batch()] for _ in range(4)] == expected[5:]


def test_sampler_refuses_impossible_requests() -> None:
    with pytest.raises(ValueError, match="no rows"):
        BatchSampler([], 4, seed=0)
    with pytest.raises(ValueError, match="no answer-only rows"):
        BatchSampler(rows("c", 4, "long"), 4, seed=0, mixed=[], mixed_share=0.1)
