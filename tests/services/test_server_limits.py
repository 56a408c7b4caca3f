"""What a hostile client can make the real server process hold: connections, time, bytes.

Each test starts `reward-server serve` (tests/services/server_process.py) with short
limits, opens raw sockets on 127.0.0.1, and checks that the server closes what it must
and still answers a normal request. Bounded: tens of sockets, a few seconds each.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.http.limits import MAX_HEAD_BYTES, log_resource_exhaustion
from tests.services.server_process import ROOT, free_port, running_server, server_process

LIMITS = {
    "REWARD_WORKERS": "1",
    "REWARD_HEADER_TIMEOUT_S": "1.0",
    "REWARD_BODY_TIMEOUT_S": "1.5",
    "REWARD_KEEP_ALIVE_TIMEOUT_S": "1.0",
    "REWARD_MAX_CONNECTIONS": "200",
    "REWARD_MAX_BODY_BYTES": "1000000",
}
ITEM = {"answer_type": "number", "response": "<answer>3</answer>", "answer": 3}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(LIMITS) as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `within_s` seconds."""
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def score_one(url: str) -> None:
    response = httpx.post(url + "/score", json={"items": [ITEM]}, timeout=10)
    assert response.status_code == 200 and response.json()["results"][0]["reward"] == 1.0


def test_silent_and_dripping_connections_are_closed_while_requests_succeed(server: str) -> None:
    silent = [connect(server) for _ in range(60)]
    head = [connect(server) for _ in range(20)]
    body = [connect(server) for _ in range(20)]
    for sock in head:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\n")
    for sock in body:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: 1000\r\n\r\n{")
    # Drip a byte now and then: each one would restart a timer that counts idleness.
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        for sock in head + body:
            try:
                sock.sendall(b"X" if sock in head else b" ")
            except OSError:
                pass  # already closed by the server: what the test wants
        score_one(server)
        time.sleep(0.3)
    for group in (silent, head, body):
        assert all(closed_by_server(sock, within_s=3.0) for sock in group)
        for sock in group:
            sock.close()
    score_one(server)


def test_idle_keep_alive_connection_is_closed(server: str) -> None:
    sock = connect(server)
    payload = json.dumps({"items": [ITEM]}).encode()
    sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: %d\r\n\r\n%s" % (len(payload), payload))
    sock.settimeout(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert closed_by_server(sock, within_s=3.0)
    sock.close()


def scoring_request(item: dict[str, object]) -> bytes:
    payload = json.dumps({"items": [item]}).encode()
    return (b"POST /score HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(payload), payload))


def read_until(sock: socket.socket, *markers: bytes) -> bytes:
    """What the server sends until every marker has arrived (it must not close first)."""
    received = b""
    sock.settimeout(5)
    while not all(marker in received for marker in markers):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    return received


def test_pipelined_requests_are_all_answered_and_then_idle_times_out(server: str) -> None:
    sock = connect(server)
    first, second = ({**ITEM, "id": "first"}, {**ITEM, "id": "second"})
    sock.sendall(scoring_request(first) + scoring_request(second))  # one write, two requests
    received = read_until(sock, b'"first"', b'"second"')
    assert received.count(b"HTTP/1.1 200") == 2
    assert received.index(b'"first"') < received.index(b'"second"')
    assert closed_by_server(sock, within_s=3.0)  # idle after both: the header deadline
    sock.close()


def test_a_pipelined_request_whose_headers_stop_is_closed(server: str) -> None:
    sock = connect(server)
    # the second request's headers never end: once the first is answered, they are late
    sock.sendall(scoring_request({**ITEM, "id": "first"})
                 + b"POST /score HTTP/1.1\r\nHost: x\r\n")
    assert read_until(sock, b'"first"').startswith(b"HTTP/1.1 200")
    drip_until_closed(sock)
    assert closed_by_server(sock, within_s=2.0)
    sock.close()


def drip_until_closed(sock: socket.socket, seconds: float = 2.0) -> None:
    """Send a byte now and then (each would restart a timer that counts idleness)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            sock.sendall(b"X")
        except OSError:
            return  # closed by the server: what the test wants
        time.sleep(0.3)


def test_a_request_answered_before_its_body_is_in_leaves_a_deadline(server: str) -> None:
    sock = connect(server)
    # /health is GET only: the 405 goes out before the body has arrived, the body after it
    sock.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\ncontent-length: 10\r\n\r\n12345")
    assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 405")
    sock.sendall(b"67890" + b"POST /score HTTP/1.1\r\nHost: x\r\n")  # then headers drip
    drip_until_closed(sock)
    assert closed_by_server(sock, within_s=2.0)
    sock.close()


def test_request_line_and_headers_over_the_limit_are_refused(server: str) -> None:
    sock = connect(server)
    try:
        sock.sendall(b"GET /" + b"a" * (MAX_HEAD_BYTES + 300_000))  # more than one read
    except OSError:
        pass  # closed while sending: the refusal may already be there
    answer = read_until(sock, b"\r\n\r\n")
    # refused by the bound (the header deadline closes without answering)
    assert answer.startswith(b"HTTP/1.1 431") and closed_by_server(sock, within_s=2.0)
    sock.close()
    score_one(server)


def test_a_queued_pipelined_request_waits_for_a_slow_one_without_a_deadline() -> None:
    slow = {"answer_type": "test-fake", "response": "<answer>sleep:2.5</answer>",
            "answer": "x", "id": "slow"}
    with server_process({**LIMITS, "REWARD_ITEM_TIMEOUT_S": "10"}, with_fakes=True) as server:
        while httpx.get(server.url + "/health").json()["worker_start_s"] is None:
            time.sleep(0.1)  # the slow item must not wait for a worker's start
        sock = connect(server.url)
        second = scoring_request({**ITEM, "id": "second"})
        head, body = second.split(b"\r\n\r\n", 1)
        # the second request's headers come while the first (longer than the body deadline)
        # is served, its body has been read and the server stops reading; its body later
        sock.sendall(scoring_request(slow))
        time.sleep(0.3)
        sock.sendall(head + b"\r\n\r\n")
        time.sleep(0.3)
        sock.sendall(body)
        received = read_until(sock, b'"slow"', b'"second"')
        assert received.count(b"HTTP/1.1 200") == 2
        sock.close()


def test_chunked_body_over_the_limit_is_refused_as_it_streams(server: str) -> None:
    sock = connect(server)
    sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                 b"transfer-encoding: chunked\r\n\r\n")
    chunk = b" " * 65536
    sent = 0
    sock.settimeout(0.05)
    answer = b""
    while sent < 50_000_000 and not answer:
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            answer = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.settimeout(5)
    try:
        answer += sock.recv(65536)
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"REWARD_MAX_BODY_BYTES" in answer
    assert sent < 5_000_000  # refused near the 1 MB limit, not after reading everything
    score_one(server)


def test_connections_beyond_the_open_file_limit_are_refused_not_failed(tmp_path: Path) -> None:
    """With 300 descriptors, connections stop well before EMFILE: 503s, one log line."""

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))

    log_path = tmp_path / "server.log"
    env = {**LIMITS, "REWARD_MAX_CONNECTIONS": "10000", "REWARD_HEADER_TIMEOUT_S": "30"}
    with running_server(env, log_path=log_path, preexec_fn=few_files) as url:
        socks = [connect(url) for _ in range(150)]
        time.sleep(0.5)
        refused = 0
        for sock in socks:
            sock.settimeout(0.2)
            try:
                refused += sock.recv(4096).startswith(b"HTTP/1.1 503")
            except TimeoutError:
                pass
        assert refused >= 100  # 300 descriptors less the reserve leave room for 44
        for sock in socks:
            sock.close()
        score_one(url)
    log = log_path.read_text()
    assert "does not fit the open-file limit" in log
    assert log.count("connection limit") == 1
    assert "out of system resources" not in log


def test_exhausted_descriptors_are_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def flood() -> None:
        loop = asyncio.get_running_loop()
        log_resource_exhaustion(loop)
        for _ in range(1000):
            loop.call_exception_handler({
                "message": "socket.accept() out of system resource",
                "exception": OSError(errno.EMFILE, "Too many open files"),
            })

    with caplog.at_level(logging.ERROR, logger="services.http.limits"):
        asyncio.run(flood())
    lines = [r for r in caplog.records if "out of system resources" in r.getMessage()]
    assert len(lines) == 1 and "EMFILE" in lines[0].getMessage()


# -- what held under probing, kept --------------------------------------------------------


def test_sigterm_drains_the_requests_in_flight() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "REWARD_WORKERS": "1",
                          "REWARD_ITEM_TIMEOUT_S": "30"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
            assert time.monotonic() < deadline, "server did not start"
        # A page that keeps its worker busy for 1.5 s (plus Chromium's start).
        busy = "<script>const t = Date.now(); while (Date.now() - t < 1500) {}</script><p>x</p>"
        item = {"answer_type": "html-code", "response": f"<answer>{busy}</answer>",
                "answer": "<p>x</p>", "options": {"javascript": True, "render_timeout_s": 10}}
        answers: list[httpx.Response] = []
        client = threading.Thread(target=lambda: answers.append(
            httpx.post(url + "/score", json={"items": [item]}, timeout=30)))
        client.start()
        deadline = time.monotonic() + 20
        while httpx.get(url + "/health", timeout=5).json()["inflight"] == 0:
            assert time.monotonic() < deadline, "the request never reached a worker"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        client.join(30)
        assert answers and answers[0].status_code == 200
        assert answers[0].json()["results"][0]["status"] == "ok"
        # uvicorn re-raises the signal it deferred: "killed by SIGTERM" after the drain.
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_concurrent_clients_get_no_errors(server: str) -> None:
    """8 clients for 3 s, batches of 64 items: every request a 200, every item scored."""
    errors: list[str] = []
    scored = [0]
    lock = threading.Lock()
    stop = time.monotonic() + 3.0

    def client(seed: int) -> None:
        items = [{**ITEM, "response": f"<answer>{(seed + i) % 5}</answer>"} for i in range(64)]
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < stop:
                response = http.post(server + "/score", json={"items": items})
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:100]}")
                    continue
                statuses = {r["status"] for r in response.json()["results"]}
                with lock:
                    scored[0] += len(items)
                if statuses != {"ok"}:
                    errors.append(str(statuses))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and scored[0] >= 8 * 64
