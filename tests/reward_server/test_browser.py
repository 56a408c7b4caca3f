"""The sandboxed Chromium renderer: what it shows, what it refuses, how it recovers.

These tests start Debian's Chromium themselves (`/usr/bin/chromium`); they never skip.
"""

from __future__ import annotations

import asyncio
import base64
import io
import multiprocessing
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reward_server.browser import (
    ChromiumRenderer,
    RenderError,
    Rendering,
    RenderSettings,
    browser_launches,
    render_html,
    shutdown,
    warm_renders,
)

JS = RenderSettings(javascript=True)


def _red_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def _red_pixels(rendering: Rendering) -> int:
    image = rendering.image.astype(int)
    red = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)
    return int(red.sum())


def _descendants(pid: int) -> list[int]:
    """Process ids below `pid`, read from /proc (no psutil here)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _chromium_browser_pids() -> list[int]:
    """Our Chromium browser processes (not renderers, GPU or zygote helpers)."""
    pids = []
    for pid in _descendants(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if "chromium" in argv[0].decode(errors="replace") and not any(
            arg.startswith(b"--type=") for arg in argv
        ) and b"--remote-debugging-pipe" in argv:
            pids.append(pid)
    return pids


# -- what it shows ---------------------------------------------------------------------


def test_renders_screenshot_and_visible_text() -> None:
    rendering = render_html(
        "<html><body><h1>Hello</h1><p>visible</p><p style='display:none'>hidden</p>"
        "<style>p{color:blue}</style></body></html>"
    )
    settings = RenderSettings()
    assert rendering.image.dtype == np.uint8
    assert rendering.image.shape == (
        settings.viewport_height * settings.scale,
        settings.viewport_width * settings.scale,
        3,
    )
    assert rendering.text.split() == ["Hello", "visible"]
    assert rendering.blocked == ()
    # Something dark (the heading) was painted on the white page.
    assert rendering.image.min() < 100


def test_warm_page_serves_script_free_pages_and_forgets_the_previous_one() -> None:
    render_html("<p>start</p>")
    launches, served = browser_launches(), warm_renders()
    first = render_html("<title>t</title><p>alpha page</p><div style='height:3000px'></div>")
    second = render_html("<p>beta</p>")
    assert warm_renders() == served + 2 and browser_launches() == launches
    assert first.text.strip() == "alpha page" and second.text.strip() == "beta"
    assert first.page_height > 3000 and second.page_height < 1000  # no layout carried over
    assert second.image.shape == render_html("<p>beta</p>").image.shape


def test_a_script_free_page_leaves_no_cookie_in_the_warm_context() -> None:
    from reward_server import browser

    render_html("<meta http-equiv='set-cookie' content='left=behind'><p>cookie</p>"
                "<img src='http://example.com/set-cookie.png'>")
    cookies = browser._shared_thread().run(
        lambda renderer: renderer._warm.context.cookies())  # type: ignore[arg-type,return-value,union-attr]
    assert cookies == []


def test_scripted_pages_get_a_fresh_context_each() -> None:
    served = warm_renders()
    # window.name survives navigations of one tab; a global is the page's own state
    writer = "<script>window.name = 'left behind'; window.leftover = 1;</script><p>w</p>"
    reader = ("<p id='o'></p><script>document.getElementById('o').textContent ="
              " 'name=' + window.name + ' leftover=' + typeof window.leftover;</script>")
    render_html(writer, JS)
    assert render_html(reader, JS).text.strip() == "name= leftover=undefined"
    assert warm_renders() == served


def test_a_timed_out_render_drops_the_warm_page() -> None:
    slow = RenderSettings(navigation_timeout_s=0.3)
    frames = "<iframe srcdoc='x'></iframe>" * 1
    deep = "<div>" * 5000 + "deep" + "</div>" * 5000
    render_html("<p>warm</p>", slow)
    try:
        render_html(deep * 40 + frames, slow)
    except RenderError as exc:
        assert exc.kind == "timeout"
    assert render_html("<p>after</p>", slow).text.strip() == "after"


def test_tall_page_is_captured_to_the_clamp() -> None:
    settings = RenderSettings(max_page_height=2000)
    tall = render_html("<div style='height:1500px;background:#00f'>a</div>", settings)
    assert tall.image.shape[0] == pytest.approx(1500 * settings.scale, abs=5)
    huge = render_html(
        "<div style='width:100000px;height:100000px;background:#0a0'>big</div>", settings
    )
    assert huge.page_height >= 100_000
    assert huge.image.shape == (2000 * settings.scale, 1280 * settings.scale, 3)


def test_javascript_is_off_by_default_and_on_by_option() -> None:
    page = "<body><p>static</p><script>document.write('<p>written by script</p>')</script>"
    assert "written by script" not in render_html(page).text
    assert "written by script" in render_html(page, JS).text


# -- what it refuses -------------------------------------------------------------------


def test_network_requests_are_aborted_and_recorded() -> None:
    page = (
        "<html><head><link rel='stylesheet' href='http://example.com/evil.css'></head><body>"
        "<img src='http://127.0.0.1:8000/track.png'><img src='https://example.org/a.png'>"
        "<iframe src='http://example.net/'></iframe><p>text</p></body></html>"
    )
    rendering = render_html(page)
    assert set(rendering.blocked) >= {
        "http://example.com/evil.css",
        "http://127.0.0.1:8000/track.png",
        "https://example.org/a.png",
        "http://example.net/",
    }


def test_page_cannot_navigate_away() -> None:
    # Aborting a navigation would commit an error page, at a moment that depends on timing.
    refresh = "<meta http-equiv='refresh' content='0; url=http://example.com/'><p>stay</p>"
    for _ in range(3):
        rendering = render_html(refresh)
        assert (rendering.text, rendering.blocked) == ("stay", ("http://example.com/",))
    later = "<p>stay</p><script>setTimeout(() => { location.href = 'http://e.com/' }, 0)</script>"
    assert render_html(later, JS).text == "stay"


def test_local_files_are_not_loaded(tmp_path: Path) -> None:
    red_png = tmp_path / "red.png"
    red_png.write_bytes(_red_png())
    css = tmp_path / "evil.css"
    css.write_text("body { background: #ff0000 !important } p::after { content: 'LEAKED' }")
    secret = tmp_path / "secret.html"
    secret.write_text("<body style='background:#ff0000'>SECRET</body>")
    page = (
        f"<html><head><link rel='stylesheet' href='file://{css}'></head><body>"
        f"<img src='file://{red_png}' width=400 height=300>"
        f"<iframe src='file://{secret}' width=400 height=300></iframe>"
        f"<object data='file:///etc/passwd'></object><p>text</p></body></html>"
    )
    rendering = render_html(page)
    assert _red_pixels(rendering) == 0
    assert "LEAKED" not in rendering.text and "SECRET" not in rendering.text
    # Control: the same picture inline (data: URL) is shown, so the check above can fail.
    inline = base64.b64encode(red_png.read_bytes()).decode()
    control = render_html(f"<img src='data:image/png;base64,{inline}' width=400 height=300>")
    assert _red_pixels(control) > 1000


def test_scripts_cannot_reach_network_or_disk(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    page = f"""<body><p id=out>start</p><script>
      fetch('http://example.com/beacon?x=1').catch(() => null);
      try {{ new WebSocket('ws://example.com/socket'); }} catch (e) {{}}
      navigator.sendBeacon && navigator.sendBeacon('http://example.com/sendbeacon', 'x');
      let leaked = 'nothing';
      try {{
        const xhr = new XMLHttpRequest();
        xhr.open('GET', 'file://{secret}', false);
        xhr.send();
        leaked = xhr.responseText;
      }} catch (e) {{ leaked = 'refused'; }}
      document.getElementById('out').textContent = 'read: ' + leaked;
    </script></body>"""
    rendering = render_html(page, JS)
    assert "TOPSECRET" not in rendering.text
    assert "read: " in rendering.text  # the script ran, and got nothing
    assert "http://example.com/beacon?x=1" in rendering.blocked
    assert "ws://example.com/socket" in rendering.blocked
    # Control: a synchronous read of a data: URL does work, so the check above can fail.
    control = render_html(
        "<body><p id=out></p><script>const x = new XMLHttpRequest();"
        "x.open('GET', 'data:text/plain,INLINE', false); x.send();"
        "document.getElementById('out').textContent = x.responseText;</script></body>",
        JS,
    )
    assert "INLINE" in control.text


# -- how it recovers -------------------------------------------------------------------


def test_endless_script_times_out_and_the_browser_keeps_working() -> None:
    settings = RenderSettings(javascript=True, navigation_timeout_s=1.0)
    with pytest.raises(RenderError) as caught:
        render_html("<p>x</p><script>while (true) {}</script>", settings)
    assert caught.value.kind == "timeout"
    assert render_html("<p>still here</p>").text == "still here"


def test_deeply_nested_page_finishes_or_times_out() -> None:
    deep = "<div>" * 100_000 + "deep" + "</div>" * 100_000
    try:
        rendering = render_html(deep, RenderSettings(navigation_timeout_s=1.0))
    except RenderError as exc:
        assert exc.kind == "timeout"
    else:
        assert "deep" in rendering.text
    assert render_html("<p>next</p>").text == "next"


def test_killed_browser_is_detected_and_restarted() -> None:
    assert render_html("<p>before</p>").text == "before"
    launches = browser_launches()
    pids = _chromium_browser_pids()
    assert pids, "the warm browser should be a child of this process"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert render_html("<p>after</p>").text == "after"
    assert browser_launches() == launches + 1


def test_killed_playwright_driver_is_replaced() -> None:
    assert render_html("<p>before</p>").text == "before"
    drivers = []
    for pid in _descendants(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"run-driver" in argv:
            drivers.append(pid)
    assert drivers, "the Playwright driver should be a child of this process"
    for pid in drivers:
        os.kill(pid, signal.SIGKILL)
    assert render_html("<p>after</p>").text == "after"


def test_shutdown_then_render_starts_again() -> None:
    assert render_html("<p>one</p>").text == "one"
    shutdown()
    assert browser_launches() == 0
    assert not _chromium_browser_pids()
    assert render_html("<p>two</p>").text == "two"
    assert browser_launches() == 1


def test_callers_thread_keeps_a_clean_event_loop() -> None:
    # Playwright's sync API marks an event loop as running in its thread; renders happen on
    # a thread of their own, so the caller can still run asyncio (the HTTP server does).
    assert render_html("<p>x</p>").text == "x"

    async def answer() -> int:
        return 42

    assert asyncio.run(answer()) == 42


def _render_in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(render_html("<p>child</p>").text)


def test_forked_worker_starts_its_own_browser() -> None:
    # The engine's workers are forked from a process that may already hold a browser.
    assert render_html("<p>parent</p>").text == "parent"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_render_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=120) == "child"
    finally:
        child.join(timeout=30)
    assert render_html("<p>parent again</p>").text == "parent again"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"viewport_width": 5},  # too narrow
        {"max_page_height": 100},  # below the viewport
        {"scale": 0.0},
        {"navigation_timeout_s": 0},
        {"scale": 2.0, "max_page_height": 32768},  # a 2560 x 65536 capture
    ],
)
def test_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RenderSettings(**kwargs)  # type: ignore[arg-type]


# -- no network at all: every path a page has, to listeners of the test's own ----------


class _Listeners:
    """A UDP and a TCP socket on 127.0.0.1 that record whatever reaches them."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(64)
        self.arrived: list[str] = []
        self._threads = [threading.Thread(target=f, daemon=True)
                         for f in (self._read_udp, self._accept_tcp)]
        for thread in self._threads:
            thread.start()

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])

    @property
    def tcp_port(self) -> int:
        return int(self.tcp.getsockname()[1])

    def _read_udp(self) -> None:
        while True:
            try:
                data, _ = self.udp.recvfrom(4096)
            except OSError:
                return
            self.arrived.append(f"udp {data[:8]!r}")

    def _accept_tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            conn.settimeout(1)
            try:
                self.arrived.append(f"tcp {conn.recv(64)!r}")
            except OSError:
                self.arrived.append("tcp connect")
            conn.close()

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


def _every_network_path(udp: int, tcp: int) -> str:
    """A page that tries every way out it has, each aimed at the listeners."""
    return f"""<!doctype html><html><head>
      <link rel="dns-prefetch" href="//reward-probe.localhost:{tcp}">
      <link rel="preconnect" href="http://127.0.0.1:{tcp}">
      <link rel="prefetch" href="http://127.0.0.1:{tcp}/prefetch">
    </head><body><p id=out>start</p><script>
      const done = [];
      const stun = new RTCPeerConnection({{iceServers: [{{urls: 'stun:127.0.0.1:{udp}'}}]}});
      stun.createDataChannel('x');
      stun.createOffer().then(o => stun.setLocalDescription(o));
      const turn = new RTCPeerConnection({{iceServers: [
        {{urls: 'turn:127.0.0.1:{udp}?transport=udp', username: 'u', credential: 'p'}},
        {{urls: 'turn:127.0.0.1:{tcp}?transport=tcp', username: 'u', credential: 'p'}}]}});
      turn.createDataChannel('y');
      turn.createOffer().then(o => turn.setLocalDescription(o));
      try {{ new WebSocket('ws://127.0.0.1:{tcp}/socket'); }} catch (e) {{}}
      try {{ new WebTransport('https://127.0.0.1:{udp}/wt').ready.catch(() => null); }}
      catch (e) {{}}
      navigator.sendBeacon && navigator.sendBeacon('http://127.0.0.1:{tcp}/beacon', 'x');
      if (navigator.serviceWorker) {{
        navigator.serviceWorker.register('http://127.0.0.1:{tcp}/sw.js').catch(() => null);
      }}
      fetch('http://127.0.0.1:{tcp}/fetch', {{mode: 'no-cors'}}).catch(() => null);
      document.getElementById('out').textContent = 'tried';
    </script></body></html>"""


def _render_in_thread(renderer: ChromiumRenderer, html: str) -> Rendering:
    """Render on a thread of its own (Playwright's sync API marks the thread's loop)."""
    out: list[Rendering] = []

    def render_then_close() -> None:
        try:
            out.append(renderer.render(html, JS))
        finally:
            renderer.close()

    worker = threading.Thread(target=render_then_close)
    worker.start()
    worker.join(60)
    assert out, "the render did not finish"
    return out[0]


def test_no_network_path_of_a_page_reaches_anything() -> None:
    listeners = _Listeners()
    try:
        page = _every_network_path(listeners.udp_port, listeners.tcp_port)
        rendering = render_html(page, JS)
        assert "tried" in rendering.text  # the script ran to its end
        time.sleep(2.0)  # ICE gathering and retries happen after the load event
        assert listeners.arrived == []
        # Control: the same page in a Chromium with network (the in-browser walls only)
        # reaches the listeners, so the check above can fail.
        _render_in_thread(ChromiumRenderer(isolate_network=False), page)
        deadline = time.monotonic() + 5
        while not listeners.arrived and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listeners.arrived, "control: nothing arrived even with network"
    finally:
        listeners.close()


def test_chromium_runs_in_its_own_network_namespace() -> None:
    assert render_html("<p>x</p>").text == "x"
    pids = _chromium_browser_pids()
    assert pids
    own = os.readlink("/proc/self/ns/net")
    assert all(os.readlink(f"/proc/{pid}/ns/net") != own for pid in pids)
