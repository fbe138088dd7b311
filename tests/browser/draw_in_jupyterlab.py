"""Lesson 12 as a student meets it: JupyterLab in Chromium, a stroke drawn with the mouse, the mask read back.

Steps (every wait is bounded):
1. copy the notebook into a temporary folder and start JupyterLab there, bound to 127.0.0.1, with fresh
   settings, workspace and runtime folders (the repository's notebook is never touched or autosaved);
2. open it in headless Chromium driven by Playwright and run all cells;
3. read the painter's mask from the kernel (through the kernel's connection file), drag the mouse across
   the painted photo, read the mask again;
4. check that the holes only grew and that the pixels under the mouse path became holes;
5. click *Inpaint*, check the results (in the kernel and on the page) and screenshot the painter;
6. close the browser and stop the Jupyter server.

Usage (see README.md beside this file): ``python tests/browser/draw_in_jupyterlab.py --screenshot shot.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "12_interactive_inpainting.ipynb"
CANVAS_SELECTOR = "img.pconv-mask-canvas"
PAINTER_SELECTOR = ".pconv-mask-painter"
RESULT_IMAGES_SELECTOR = ".pconv-inpainted img"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READ_HOLES = (
    "import json as _json, numpy as _np\n"
    "print(_json.dumps({'shape': list(painter.canvas.hole.shape), "
    "'brush': painter.controller.brush_size, "
    "'holes': _np.argwhere(painter.canvas.hole).tolist()}))"
)
READ_RESULTS = (
    "import json as _json\n"
    "print(_json.dumps({name: list(result.shape) for name, result in painter.results.items()}))"
)
# The mouse path, as fractions of the shown image's width and height (straight, so that every
# point between the throttled move events lies on it).
PATH_FRACTIONS = ((0.12, 0.86), (0.88, 0.8))


@dataclass
class Outcome:
    image_size: list[int]
    holes_before: int
    holes_after: int
    path_pixels: int
    path_pixels_painted: int
    stray_pixels: int
    result_shapes: dict[str, list[int]]
    result_images_shown: int
    screenshot: Path

    @property
    def passed(self) -> bool:
        return (
            self.holes_after > self.holes_before
            and self.path_pixels_painted == self.path_pixels
            and self.stray_pixels == 0
            and bool(self.result_shapes)
            and all(shape[-2:] == self.image_size for shape in self.result_shapes.values())
            and self.result_images_shown == len(self.result_shapes) + 1
        )


def find_chromium() -> str | None:
    """A Chromium to drive: $PCONV_CHROMIUM, else one on the PATH; None means Playwright's own, if installed."""
    if os.environ.get("PCONV_CHROMIUM"):
        return os.environ["PCONV_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


class JupyterLab:
    """A JupyterLab server in a temporary folder, bound to 127.0.0.1, stopped on exit."""

    def __init__(self, notebook: Path, workdir: Path):
        self.workdir = workdir
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        (workdir / "notebooks").mkdir(parents=True)
        self.notebook = workdir / "notebooks" / notebook.name
        shutil.copy(notebook, self.notebook)
        self.runtime = workdir / "runtime"
        news = workdir / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True)
        news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no pop-up, no network
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            JUPYTER_RUNTIME_DIR=str(self.runtime),
            JUPYTER_CONFIG_DIR=str(workdir / "config"),
            JUPYTERLAB_SETTINGS_DIR=str(workdir / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
        )
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={workdir}",
            "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers often run as root
        self.log = open(workdir / "jupyter.log", "w")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)

    def api(self, path: str):
        url = f"http://127.0.0.1:{self.port}/api/{path}?token={self.token}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def wait_ready(self, timeout: float = 90) -> None:
        def ready():
            if self.process.poll() is not None:
                self.log.flush()
                tail = (self.workdir / "jupyter.log").read_text()[-3000:]
                raise RuntimeError(f"JupyterLab exited early; the end of its log:\n{tail}")
            try:
                return self.api("status")
            except OSError:
                return None

        _wait_until(ready, timeout, "JupyterLab to answer")

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/notebooks/{self.notebook.name}?token={self.token}"

    def kernel_id(self) -> str | None:
        sessions = [s for s in self.api("sessions") if s["path"].endswith(self.notebook.name)]
        return sessions[0]["kernel"]["id"] if sessions else None

    def kernel_idle(self, kernel_id: str) -> bool:
        return self.api(f"kernels/{kernel_id}")["execution_state"] == "idle"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def run_in_kernel(connection_file: Path, code: str, timeout: float = 60) -> str:
    """Execute ``code`` in the notebook's own kernel and return what it printed."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(connection_file))
    client.load_connection_file()
    client.start_channels()
    printed: list[str] = []

    def collect(message):
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            printed.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            printed.append("ERROR: " + message["content"]["evalue"])

    try:
        client.wait_for_ready(timeout=timeout)
        reply = client.execute_interactive(code, timeout=timeout, output_hook=collect)
    finally:
        client.stop_channels()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"the kernel could not run the read-back code: {''.join(printed)}")
    return "".join(printed)


def read_holes(connection_file: Path) -> tuple[tuple[int, int], float, set[tuple[int, int]]]:
    data = json.loads(run_in_kernel(connection_file, READ_HOLES).strip().splitlines()[-1])
    return tuple(data["shape"]), float(data["brush"]), {tuple(pixel) for pixel in data["holes"]}


def wait_for_quiet_kernel(lab: JupyterLab, kernel_id: str, timeout: float) -> None:
    """Idle for three polls in a row: every queued cell and widget message has been handled."""
    streak = {"idle": 0}

    def quiet():
        streak["idle"] = streak["idle"] + 1 if lab.kernel_idle(kernel_id) else 0
        return streak["idle"] >= 3

    _wait_until(quiet, timeout, "the kernel to finish running the notebook")


def settled_box(locator, timeout: float) -> dict:
    """The element's bounding box once it is in view and has not moved for three polls (images above it
    finish loading after the kernel is idle and push it down)."""
    history: list[dict] = []

    def settled():
        locator.scroll_into_view_if_needed()
        history.append(locator.bounding_box())
        return len(history) >= 3 and history[-1] == history[-2] == history[-3] and history[-1]

    return _wait_until(settled, timeout, "the painted photo to stop moving")


def pixels_under_path(points_px, shape, radius):
    """Image pixels whose centres lie within ``radius`` of the polyline through ``points_px`` (image coordinates)."""
    height, width = shape
    inside = set()
    for (ax, ay), (bx, by) in zip(points_px[:-1], points_px[1:]):
        steps = int(max(abs(bx - ax), abs(by - ay)) * 4) + 1
        for k in range(steps + 1):
            x, y = ax + (bx - ax) * k / steps, ay + (by - ay) * k / steps
            for row in range(int(y - radius) - 1, int(y + radius) + 2):
                for col in range(int(x - radius) - 1, int(x + radius) + 2):
                    if 0 <= row < height and 0 <= col < width and (col - x) ** 2 + (row - y) ** 2 <= radius**2:
                        inside.add((row, col))
    return inside


def draw_and_check(
    notebook: Path = NOTEBOOK, screenshot: Path = Path("jupyterlab_painter.png"), timeout: float = 300
) -> Outcome:
    """Run the whole browser check; raises on any failure to get that far, returns what it saw."""
    from playwright.sync_api import sync_playwright

    started = time.monotonic()

    def remaining() -> float:
        return max(5.0, timeout - (time.monotonic() - started))

    with tempfile.TemporaryDirectory(prefix="pconv-browser-") as tmp:
        lab = JupyterLab(notebook, Path(tmp))
        try:
            lab.wait_ready(timeout=min(90, remaining()))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch_persistent_context(
                    user_data_dir=str(Path(tmp) / "chromium-profile"),  # a fresh profile
                    executable_path=find_chromium(),
                    args=CHROMIUM_ARGS,
                    viewport={"width": 1400, "height": 1400},
                )
                try:
                    page = browser.new_page()
                    page.set_default_timeout(remaining() * 1000)
                    page.goto(lab.url())
                    page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')")
                    kernel_id = _wait_until(lab.kernel_id, min(60, remaining()), "the notebook's kernel")
                    _wait_until(lambda: lab.kernel_idle(kernel_id), min(60, remaining()), "the kernel to start")
                    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                    canvas = page.locator(CANVAS_SELECTOR).first
                    canvas.wait_for(state="visible")
                    wait_for_quiet_kernel(lab, kernel_id, remaining())
                    connection = lab.runtime / f"kernel-{kernel_id}.json"
                    shape, brush, before = read_holes(connection)

                    box = settled_box(canvas, min(60, remaining()))
                    path_page = [
                        (box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in PATH_FRACTIONS
                    ]
                    page.mouse.move(*path_page[0])
                    page.mouse.down()
                    for point in path_page[1:]:
                        page.mouse.move(*point, steps=20)
                    page.mouse.up()
                    time.sleep(1.0)
                    wait_for_quiet_kernel(lab, kernel_id, min(60, remaining()))
                    _, _, after = read_holes(connection)

                    page.locator(PAINTER_SELECTOR).first.get_by_role("button", name="Inpaint").click()
                    time.sleep(1.0)
                    wait_for_quiet_kernel(lab, kernel_id, min(120, remaining()))
                    result_shapes = json.loads(run_in_kernel(connection, READ_RESULTS).strip().splitlines()[-1])
                    shown = page.locator(PAINTER_SELECTOR).first.locator(RESULT_IMAGES_SELECTOR)
                    _wait_until(lambda: shown.count() == len(result_shapes) + 1, 30, "the results to be shown")
                    result_images_shown = shown.count()
                    page.wait_for_timeout(1000)  # let the last PNGs arrive before the picture is taken
                    page.locator(PAINTER_SELECTOR).first.screenshot(path=str(screenshot))
                finally:
                    browser.close()
        finally:
            lab.stop()

    height, width = shape
    scale_x, scale_y = width / box["width"], height / box["height"]
    path_image = [((px - box["x"]) * scale_x - 0.5, (py - box["y"]) * scale_y - 0.5) for px, py in path_page]
    core = pixels_under_path(path_image, shape, max(0.5, brush / 2 - 2 * max(scale_x, scale_y)))
    reach = pixels_under_path(path_image, shape, brush / 2 + 2 * max(scale_x, scale_y))
    new = after - before
    return Outcome(
        image_size=list(shape),
        holes_before=len(before),
        holes_after=len(after),
        path_pixels=len(core),
        path_pixels_painted=len(core & after),
        stray_pixels=len(new - reach) + len(before - after),
        result_shapes=result_shapes,
        result_images_shown=result_images_shown,
        screenshot=screenshot,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--screenshot", type=Path, default=Path("jupyterlab_painter.png"))
    parser.add_argument("--timeout", type=float, default=300, help="seconds for the whole run")
    args = parser.parse_args()
    outcome = draw_and_check(args.notebook, args.screenshot, args.timeout)
    print(f"holes before the mouse stroke: {outcome.holes_before} pixels, after: {outcome.holes_after} pixels")
    print(f"pixels on the mouse path painted: {outcome.path_pixels_painted} of {outcome.path_pixels}")
    print(f"pixels changed away from the path: {outcome.stray_pixels}")
    print(f"Inpaint button: results {outcome.result_shapes}, {outcome.result_images_shown} images shown")
    print(f"screenshot: {outcome.screenshot}")
    print("PASSED" if outcome.passed else "FAILED")
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
