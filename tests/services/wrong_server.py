"""A deliberately wrong reward server, for the validation suite's tests.

It answers `/health` like the real one and gives every item `acc_reward` 1.0, status
`ok` (a grader that accepts anything), except `boolean` items, which get an HTTP 500, and
`critic` items, which get status `timeout` the first time their id is seen.
`reward-server validate` must fail against it and list the rows it gets wrong.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
_seen: set[str] = set()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/score", response_model=None)
async def score(request: Request) -> dict[str, Any] | JSONResponse:
    items = (await request.json())["items"]
    if any(item["answer_type"] == "boolean" for item in items):
        return JSONResponse(status_code=500, content={"message": "boolean verifier is down"})
    return {"results": [_result(item) for item in items]}


def _result(item: dict[str, Any]) -> dict[str, Any]:
    first_time = item.get("id") not in _seen
    _seen.add(item.get("id"))
    if item["answer_type"] == "critic" and first_time:
        return {"id": item.get("id"), "reward": 0.0, "acc_reward": 0.0, "format_reward": 0.0,
                "components": {}, "extracted": None, "status": "timeout",
                "error": "verifier exceeded the item timeout", "cached": False}
    return {"id": item.get("id"), "reward": 1.0, "acc_reward": 1.0, "format_reward": 1.0,
            "components": {}, "extracted": item["response"], "status": "ok", "error": None,
            "cached": False}
