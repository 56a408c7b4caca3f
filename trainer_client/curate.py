"""Discrepancy-driven curation (RECIPE.md, "Data curation").

Roll out the base model N times per problem and score every rollout. A problem is kept
when its mean reward lies strictly inside a window, default (0.0, 0.6): never-solved and
always-solved problems give every GRPO group equal rewards, hence no signal, and a
problem solved sometimes (Pass@N > 0) but rarely (low Pass@1) is the "latent capability"
the recipe targets. Windows can be set per source (some sources keep everything, e.g.
(-1, 2)). Rows whose rollouts the server could not score at all are dropped and counted.

The kept rows are written with their original columns plus `mean_reward`, `pass_at_1`,
`pass_at_n` and `num_samples`, to parquet or JSONL (by the output suffix; image bytes are
base64 in JSONL).
"""

from __future__ import annotations

import base64
import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer_client.data import JSONL_SUFFIXES, PARQUET_SUFFIXES, LoadReport, read_records
from trainer_client.evaluate import RowStats, format_table

Window = tuple[float, float]
DEFAULT_WINDOW: Window = (0.0, 0.6)


def parse_window(text: str) -> Window:
    """`"0.0,0.6"` -> (0.0, 0.6); the lower bound must be below the upper one."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"window {text!r} must be two numbers 'LOW,HIGH', e.g. 0.0,0.6") from None
    if not low < high:
        raise ValueError(f"window {text!r}: LOW must be below HIGH")
    return low, high


@dataclass(frozen=True)
class CurationResult:
    kept: list[RowStats]
    dropped: list[RowStats]
    reasons: Counter[str]


def select(
    stats: Sequence[RowStats],
    window: Window = DEFAULT_WINDOW,
    source_windows: Mapping[str, Window] | None = None,
) -> CurationResult:
    """Keep rows whose mean reward is strictly inside their source's window."""
    kept, dropped = [], []
    reasons: Counter[str] = Counter()
    for s in stats:
        low, high = (source_windows or {}).get(s.row.source, window)
        if s.scored == 0:
            reason = "unscored"
        elif s.mean_reward <= low:
            reason = "never solved (at or below window)"
        elif s.mean_reward >= high:
            reason = "too easy (at or above window)"
        else:
            kept.append(s)
            continue
        reasons[reason] += 1
        dropped.append(s)
    return CurationResult(kept, dropped, reasons)


def write_curated(kept: Sequence[RowStats], out: str | Path, samples: int) -> Path:
    """Write the kept rows' original records plus the curation columns, in file order."""
    out = Path(out)
    wanted: dict[str, dict[int, RowStats]] = defaultdict(dict)
    for s in kept:
        wanted[s.row.file][s.row.index] = s
    records: list[dict[str, Any]] = []
    for file, by_index in wanted.items():
        for index, record in enumerate(read_records(file)):
            if index in by_index:
                s = by_index[index]
                records.append(
                    {
                        **record,
                        "mean_reward": s.mean_reward,
                        "pass_at_1": s.pass_at_1,
                        "pass_at_n": s.pass_at_n,
                        "num_samples": samples,
                    }
                )
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), out)
    elif suffix in JSONL_SUFFIXES:
        with out.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(_jsonable(record), ensure_ascii=False) + "\n")
    else:
        raise ValueError(f"{out}: write .parquet or .jsonl")
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary(result: CurationResult, report: LoadReport, bins: int = 10) -> str:
    """Rows in/kept per source and per answer type, drop reasons, and a reward histogram."""
    every = result.kept + result.dropped
    parts = [report.summary()]
    for label, key in (("source", "source"), ("answer_type", "answer_type")):
        seen = Counter(getattr(s.row, key) for s in every)
        kept = Counter(getattr(s.row, key) for s in result.kept)
        rows = [[name, seen[name], kept[name], f"{kept[name] / seen[name]:.0%}"]
                for name in sorted(seen)]
        rows.append(["all", len(every), len(result.kept),
                     f"{len(result.kept) / max(len(every), 1):.0%}"])
        parts.append(format_table([label, "rows in", "kept", "kept %"], rows))
    if result.reasons:
        parts.append("dropped: " + ", ".join(f"{r} {n}" for r, n in sorted(result.reasons.items())))
    parts.append(histogram([s.mean_reward for s in every if s.scored], bins))
    return "\n\n".join(parts)


def histogram(values: Sequence[float], bins: int = 10) -> str:
    """Text histogram of mean rewards over [0, 1] (values above 1, e.g. spatial bonus, last)."""
    counts = [0] * bins
    above = 0
    for v in values:
        if v > 1.0:
            above += 1
        else:
            counts[min(int(max(v, 0.0) * bins), bins - 1)] += 1
    peak = max([*counts, above, 1])
    lines = ["mean reward histogram"]
    for i, count in enumerate(counts):
        low, high = i / bins, (i + 1) / bins
        closing = "]" if i == bins - 1 else ")"
        bar = "#" * round(40 * count / peak)
        lines.append(f"[{low:.1f}, {high:.1f}{closing}  {count:6d}  {bar}")
    if above:
        lines.append(f"(1.0, 1.5]  {above:6d}  {'#' * round(40 * above / peak)}")
    return "\n".join(lines)
