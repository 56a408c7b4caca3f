"""Render untrusted HTML to a screenshot and its visible text with headless Chromium.

Contract
- `render_html(html, settings)` returns a `Rendering`: an RGB screenshot (uint8, H x W x 3)
  and the page's visible text (`innerText` of the body). It raises `RenderError` with
  `kind` "timeout" (navigation or screenshot overran its limit), "crash" (the page's
  renderer died) or "browser" (the browser died twice in a row).
- One browser per process, kept warm and driven from a thread of its own (started on first
  use): Playwright's sync API marks an event loop as running in its thread, which would
  break callers that use asyncio. Verifiers call this inside the engine's worker
  processes, which are killed on timeout; Chromium and Playwright's driver exit with them
  (the driver sees its pipe close). A forked child forgets its parent's browser and starts
  its own. `shutdown()` stops them (also at exit).
- A page without JavaScript (the default) is rendered in this process's warm page: one
  browser context and page kept open per render settings and reused, its document
  replaced by `page.set_content` (without scripts a page can write no storage and leave
  no timers, and with every response refused it can set no cookie). That saves the new
  renderer process a fresh context costs (about two thirds of a render). A page with
  `javascript=True` gets a fresh context of its own, closed after the capture, so nothing
  a script leaves behind (storage, timers, workers) reaches the next page. A render that
  times out or fails drops the warm page; the next one opens a new one. Pages are loaded
  with `page.set_content`, never by URL, at a fixed viewport.
- The screenshot covers the full page height, clamped to `max_page_height` CSS pixels, and
  the viewport's width (horizontal overflow is cut off). It is taken at
  `device_scale_factor = scale`, so Chromium itself downscales it (1280 CSS px at scale
  0.25 gives 320 pixels): cheaper than a full-size capture plus a resize, and the
  anti-aliased result is what the comparison wants.
- A browser that crashed or was killed, or whose driver was, is detected
  (`is_connected()` false, or a Playwright error after which the browser no longer opens
  a context) and restarted; the render is retried once.

What the sandbox covers
- Chromium runs in a network namespace of its own (`reward_server.netns`, bubblewrap):
  it has no network at all, so nothing a page does (WebRTC STUN/TURN, QUIC and
  WebTransport, WebSockets, prefetch, beacons, service workers) reaches any host, the
  machine's own loopback included. Playwright drives it over a pipe. Where no namespace
  can be made, rendering fails (`RenderError("browser")`) instead of running with network.
  The walls below stay, as a second layer and to report what a page asked for.
- JavaScript is off by default (`javascript=True` enables it for a render).
- Every request the page makes is routed and refused, except `data:` URLs; the refused
  URLs are listed in `Rendering.blocked`. Subresources are aborted; navigations (a meta
  refresh, a script setting `location`, an iframe) get a synthetic 204 No Content, so the
  frame stays on the page given instead of showing an error page at a moment that depends
  on timing. WebSockets are routed to a mock that never connects,
  service workers are blocked, downloads refused. Chromium itself refuses `file://`
  subresources for a page that is not a file, and as a second wall all traffic is sent to
  a proxy address where nothing listens, so a request that escaped the route (prefetch,
  DNS prefetch, a Chromium feature we did not think of) still reaches nothing.
- Time is bounded by the navigation and screenshot timeouts here and, outside, by the
  engine killing the worker. Memory is bounded by the caller's size limit on the HTML, the
  clamped screenshot and Chromium's own limits (the HTML parser caps nesting depth).
- Not covered: Chromium exploits (it runs with `--no-sandbox`, as root in containers
  requires), CPU spent by CSS layout within the timeouts.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from reward_server.netns import NetworkIsolationError, isolated_executable

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Page,
        Playwright,
        Route,
        WebSocketRoute,
    )

log = logging.getLogger(__name__)

CHROMIUM_PATH = "/usr/bin/chromium"
# A proxy on the discard port, where nothing listens: traffic that escaped the route fails.
_DEAD_PROXY = "http://127.0.0.1:9"
LAUNCH_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-crash-reporter",
    "--disable-domain-reliability",
    "--dns-prefetch-disable",
    f"--proxy-server={_DEAD_PROXY}",
    # `<-loopback>` removes the implicit bypass, so localhost goes to the dead proxy too.
    "--proxy-bypass-list=<-loopback>",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    # A page's JavaScript heap: a memory bomb crashes its renderer (a render error) long
    # before the worker's memory cap (reward_server.memory) has to kill the worker.
    "--js-flags=--max-old-space-size=512",
    "--renderer-process-limit=2",
)

# Largest screenshot (pixels) settings may ask for: 48 MB of RGB, whatever a request says.
MAX_CAPTURE_PIXELS = 16_000_000

# The innerText of the body (what a reader sees, without script/style or hidden nodes)
# and the document's height. Runs in Playwright's utility world, so it works with the
# page's JavaScript disabled.
_PAGE_FACTS_JS = """() => {
  const root = document.documentElement;
  const body = document.body;
  const text = body ? body.innerText : (root ? root.textContent : "");
  const height = Math.max(root ? root.scrollHeight : 0, body ? body.scrollHeight : 0);
  return [text || "", height];
}"""


@dataclass(frozen=True)
class RenderSettings:
    viewport_width: int = 1280
    viewport_height: int = 960
    # Longest page captured, in CSS pixels (4 screens); the rest is cut off.
    max_page_height: int = 3840
    # Device pixels per CSS pixel of the screenshot: 0.25 gives 320 x 240..960 images.
    scale: float = 0.25
    javascript: bool = False
    navigation_timeout_s: float = 2.0
    screenshot_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if not (16 <= self.viewport_width <= 4096 and 16 <= self.viewport_height <= 4096):
            raise ValueError("viewport width and height must lie in 16..4096 CSS pixels")
        if self.max_page_height < self.viewport_height or self.max_page_height > 32768:
            raise ValueError("max_page_height must lie in viewport_height..32768")
        if not 0.05 <= self.scale <= 2.0:
            raise ValueError("scale must lie in 0.05..2.0 (device pixels per CSS pixel)")
        pixels = self.viewport_width * self.max_page_height * self.scale**2
        if pixels > MAX_CAPTURE_PIXELS:
            raise ValueError(
                f"a capture of {pixels:.0f} pixels is over {MAX_CAPTURE_PIXELS}: lower "
                "scale or max_page_height"
            )
        if self.navigation_timeout_s <= 0 or self.screenshot_timeout_s <= 0:
            raise ValueError("timeouts must be positive")


@dataclass(frozen=True)
class Rendering:
    image: np.ndarray  # H x W x 3, uint8
    text: str
    page_height: int  # CSS pixels, before clamping
    blocked: tuple[str, ...]  # URLs the page asked for and did not get


class RenderError(Exception):
    def __init__(self, kind: Literal["timeout", "crash", "browser"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ChromiumRenderer:
    """One Playwright driver and one Chromium, started on first use and again when found dead.

    Playwright's sync API binds both to the thread that starts them and marks an event loop
    as running there: use a renderer from one thread only. `render_html` keeps one on a
    thread of its own, so that callers' threads (and their asyncio) stay clean.
    """

    def __init__(
        self,
        executable_path: str = CHROMIUM_PATH,
        args: tuple[str, ...] = LAUNCH_ARGS,
        isolate_network: bool = True,
    ) -> None:
        self.executable_path = executable_path
        self.args = args
        # Off only for tests that show what the namespace stops.
        self.isolate_network = isolate_network
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._warm: _WarmPage | None = None
        self.launches = 0
        self.warm_renders = 0  # renders served by the warm page (for tests and benches)

    @property
    def browser(self) -> Browser:
        if self._browser is None or not self._browser.is_connected():
            self._start()
        assert self._browser is not None
        return self._browser

    def _start(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        self._warm = None  # it belonged to the browser being replaced
        self._close_browser()
        try:
            self._browser = self._launch()
        except PlaywrightError as exc:
            # The driver itself may be gone (killed with its children): start a new one.
            log.warning("launching Chromium failed (%s); restarting the Playwright driver", exc)
            self._stop_driver()
            self._browser = self._launch()
        self.launches += 1
        log.info("started Chromium (launch %d in pid %d)", self.launches, os.getpid())

    def _launch(self) -> Browser:
        executable = self.executable_path
        if self.isolate_network:
            try:
                executable = isolated_executable(self.executable_path)
            except NetworkIsolationError as exc:
                message = f"refusing to start Chromium with network access: {exc}"
                raise RenderError("browser", message) from None
        if self._playwright is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
        return self._playwright.chromium.launch(
            executable_path=executable, args=list(self.args), headless=True
        )

    def close(self) -> None:
        """Stop the browser and the driver; safe to call on dead or unstarted ones."""
        self._drop_warm_page()
        self._close_browser()
        self._stop_driver()

    def _close_browser(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        browser, self._browser = self._browser, None
        try:
            if browser is not None and browser.is_connected():
                browser.close()
        except PlaywrightError as exc:
            log.warning("closing Chromium failed: %s", exc)

    def _stop_driver(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        driver, self._playwright = self._playwright, None
        try:
            if driver is not None:
                driver.stop()
        except PlaywrightError as exc:
            log.warning("stopping the Playwright driver failed: %s", exc)

    def render(self, html: str, settings: RenderSettings) -> Rendering:
        """Render once; a dead browser is restarted and the render retried once."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        for attempt in (1, 2):
            browser = self.browser
            try:
                if settings.javascript:
                    return self._render_in_fresh_context(browser, html, settings)
                return self._render_in_warm_page(browser, html, settings)
            except PlaywrightTimeout as exc:
                self._drop_warm_page()  # it may still be busy with the page's layout
                raise RenderError("timeout", f"rendering timed out: {_first_line(exc)}") from None
            except PlaywrightError as exc:
                self._drop_warm_page()
                if _alive(browser):
                    # The browser is fine: the page's own renderer crashed or refused it.
                    raise RenderError("crash", f"rendering failed: {_first_line(exc)}") from None
                log.warning("Chromium died during a render (attempt %d): %s", attempt, exc)
                self._browser = None  # not closed: there is nothing left to close
        raise RenderError("browser", "Chromium died twice while rendering this page")

    def _render_in_fresh_context(
        self, browser: Browser, html: str, settings: RenderSettings
    ) -> Rendering:
        """Scripted pages: a context of their own, closed after the capture."""
        blocked: list[str] = []
        context = _new_context(browser, settings, blocked)
        try:
            return _capture(context.new_page(), html, settings, blocked)
        finally:
            _close_quietly(context)

    def _render_in_warm_page(
        self, browser: Browser, html: str, settings: RenderSettings
    ) -> Rendering:
        """Pages without scripts: the warm page of these settings, its state reset first."""
        warm = self._warm
        if warm is None or warm.settings != settings or warm.page.is_closed():
            self._drop_warm_page()
            blocked: list[str] = []
            context = _new_context(browser, settings, blocked)
            warm = self._warm = _WarmPage(settings, context, context.new_page(), blocked)
        # What a script-free page could leave behind, and why nothing needs clearing:
        # storage and timers need scripts; cookies need a script or a response header,
        # and every response here is refused or a header-less 204 (`<meta http-equiv=
        # "set-cookie">` is ignored by Chromium); `set_content` replaces the document.
        warm.blocked.clear()
        rendering = _capture(warm.page, html, settings, warm.blocked)
        self.warm_renders += 1
        return rendering

    def _drop_warm_page(self) -> None:
        warm, self._warm = self._warm, None
        if warm is not None:
            _close_quietly(warm.context)


@dataclass
class _WarmPage:
    """The page kept open between renders that have these settings."""

    settings: RenderSettings
    context: BrowserContext
    page: Page
    blocked: list[str]  # filled by the context's route handler; cleared per render


def _new_context(browser: Browser, settings: RenderSettings, blocked: list[str]) -> BrowserContext:
    """A context with the sandbox's routes, reporting refused URLs into `blocked`."""

    def abort(route: Route) -> None:
        url = route.request.url
        if url.startswith("data:"):
            route.continue_()
            return
        blocked.append(url)
        if route.request.is_navigation_request():
            # A 204 answer to a navigation (meta refresh, a script setting `location`,
            # an iframe) makes the frame stay where it is: aborting it instead would
            # commit an error page, sooner or later depending on timing.
            route.fulfill(status=204)
        else:
            route.abort("blockedbyclient")

    def refuse_socket(socket: WebSocketRoute) -> None:
        # Not calling connect_to_server() keeps the socket a mock: nothing is dialled.
        blocked.append(socket.url)
        socket.close()

    context = browser.new_context(
        viewport={"width": settings.viewport_width, "height": settings.viewport_height},
        device_scale_factor=settings.scale,
        java_script_enabled=settings.javascript,
        service_workers="block",
        accept_downloads=False,
        offline=False,
    )
    try:
        context.route("**/*", abort)
        if settings.javascript:  # only scripts open sockets; the mock costs a page script
            context.route_web_socket("**/*", refuse_socket)
    except Exception:
        _close_quietly(context)
        raise
    return context


def _capture(page: Page, html: str, settings: RenderSettings, blocked: list[str]) -> Rendering:
    page.set_content(html, wait_until="load", timeout=settings.navigation_timeout_s * 1000)
    text, height = page.evaluate(_PAGE_FACTS_JS)
    clip_height = max(settings.viewport_height, min(int(height), settings.max_page_height))
    png = page.screenshot(
        # a page that fits the viewport gives the same pixels without the full-page
        # capture's resize and relayout (a third to half of the screenshot's time)
        full_page=clip_height > settings.viewport_height,
        clip={"x": 0, "y": 0, "width": settings.viewport_width, "height": clip_height},
        timeout=settings.screenshot_timeout_s * 1000,
        animations="disabled",
        caret="hide",
        type="png",
    )
    return Rendering(_decode_png(png), str(text), int(height), tuple(blocked))


def _close_quietly(context: object) -> None:
    from playwright.sync_api import Error as PlaywrightError

    try:
        context.close()  # type: ignore[attr-defined]
    except PlaywrightError as exc:
        # The context is gone with its browser or renderer; the caller reports why.
        log.debug("closing a browser context failed: %s", exc)


def _alive(browser: Browser) -> bool:
    """Whether the browser still answers: `is_connected()` alone misses a killed driver."""
    from playwright.sync_api import Error as PlaywrightError

    if not browser.is_connected():
        return False
    try:
        browser.new_context().close()
    except PlaywrightError:
        return False
    return True


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _decode_png(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


class _RenderThread:
    """A thread that owns this process's `ChromiumRenderer` and runs renders for callers."""

    def __init__(self) -> None:
        self.renderer = ChromiumRenderer()  # holds no Playwright object until first used
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="chromium", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call(self.renderer))
            except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)
        self.renderer.close()

    def run(self, call: Callable[[ChromiumRenderer], Rendering]) -> Rendering:
        future: Future[Rendering] = Future()
        self._jobs.put((call, future))
        return future.result()

    def stop(self, timeout_s: float) -> None:
        self._jobs.put(None)
        self._thread.join(timeout_s)


_Job = tuple[Callable[[ChromiumRenderer], Rendering], "Future[Rendering]"]
_lock = threading.Lock()
_render_thread: _RenderThread | None = None


def _forget_inherited() -> None:
    # A forked child has no render thread, only its parent's objects: never touch them.
    global _lock, _render_thread
    _lock = threading.Lock()
    _render_thread = None


os.register_at_fork(after_in_child=_forget_inherited)


def _shared_thread() -> _RenderThread:
    global _render_thread
    with _lock:
        if _render_thread is None:
            _render_thread = _RenderThread()
        return _render_thread


def render_html(html: str, settings: RenderSettings | None = None) -> Rendering:
    """Render `html` with this process's warm browser (see the module docstring)."""
    chosen = settings or RenderSettings()
    return _shared_thread().run(lambda renderer: renderer.render(html, chosen))


def browser_launches() -> int:
    """How often this process's render thread has started Chromium (restarts included)."""
    with _lock:
        return 0 if _render_thread is None else _render_thread.renderer.launches


def warm_renders() -> int:
    """How many of this process's renders the warm page served (script-free pages)."""
    with _lock:
        return 0 if _render_thread is None else _render_thread.renderer.warm_renders


def shutdown(timeout_s: float = 10.0) -> None:
    """Stop this process's browser and driver; the next render starts them again."""
    global _render_thread
    with _lock:
        thread, _render_thread = _render_thread, None
    if thread is not None:
        thread.stop(timeout_s)


atexit.register(shutdown)
