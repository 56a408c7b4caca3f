"""The proto contract: the committed generated code is what the proto gives, every field
is commented, the status comment lists every status of the core."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

from reward_server.types import Status

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto" / "reward" / "v1" / "reward.proto"
GENERATED = ROOT / "reward_client" / "_proto"


def test_committed_code_is_what_the_proto_generates(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_proto.py"),
                    "--out", str(tmp_path)], check=True, capture_output=True)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(GENERATED) for p in GENERATED.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)
    assert fresh == committed
    for path in fresh:
        assert (tmp_path / path).read_text() == (GENERATED / path).read_text(), (
            f"{path} is stale: run python scripts/generate_proto.py"
        )


def test_every_field_message_and_method_has_a_comment() -> None:
    lines = PROTO.read_text().splitlines()
    declaration = re.compile(
        r"^\s*(message|service|rpc|optional|repeated|map<|string|double|bool|uint64|google\.)"
    )
    for number, line in enumerate(lines):
        if declaration.match(line) and not line.strip().startswith("//"):
            above = lines[number - 1].strip()
            assert above.startswith("//"), f"line {number + 1} has no comment: {line.strip()}"


def test_status_comment_lists_every_status() -> None:
    text = PROTO.read_text()
    comment = text[text.index("  // One of:"):text.index("  string status = 8;")]
    listed = set(re.findall(r"//\s+([a-z_]+)\s{2,}", comment))
    assert set(get_args(Status)) <= listed
