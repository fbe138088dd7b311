"""The mask painter's ipywidgets view: draw holes on a photo with the mouse, inpaint, compare side by side.

The photo is shown with its holes tinted (``pconv_lessons.viz.overlay_holes``) as PNG bytes in an
``ipywidgets.Image``. Pointer events come from ``ipyevents`` and go through a ``PointerController`` to a
``MaskCanvas``; every button and slider calls a public method, so everything the widget does can also
be done from code (``painter.canvas``, ``painter.controller``, ``painter.inpaint()``, ...).

Inpainting runs each chosen model — any callable ``(image (1, 3, H, W), mask (1, 1, H, W)) -> prediction
(1, 3, H, W)`` — on the photo with its holes zeroed (I ⊙ M: no model sees what it fills, as in lesson 11's
evaluation), clamps the prediction to [0, 1] and shows the composite I_comp = M ⊙ I + (1 − M) ⊙ prediction
(known pixels kept, holes filled; ``pconv_lessons.models.composite``), as the papers report it.

Without ``ipyevents`` the view still works with generated masks: the seed slider then applies the chosen
mask family at once, and the status line says why drawing is off.

Failures. Every button, slider, upload and pointer event runs through one guard: whatever it raises (a
model's ``RuntimeError``, an unreadable upload, a bad event) is shown in the status line as "<action>
failed: <error>" and the painter stays usable (the photo, the drawing and its history are kept, the
*Inpaint* button is enabled again). Called from code, the methods raise as usual.

In a static viewer (nbconvert, nbviewer) a stored widget view without its widget state falls back to the
output's ``image/png``: the painter adds one, the photo and its holes when it was displayed.
"""

from __future__ import annotations

import base64
import html
import importlib
import io
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor, nn

from pconv_lessons.validation import check_batch
from pconv_lessons.data import to_tensor
from pconv_lessons.models import composite
from pconv_lessons.viz import overlay_holes
from pconv_lessons.widgets.canvas import MASK_KINDS, MaskCanvas
from pconv_lessons.widgets.controller import PointerController

Inpainter = Callable[[Tensor, Tensor], Tensor]

NO_IPYEVENTS_MESSAGE = (
    "Mouse drawing is off: the ipyevents package is not installed (pip install ipyevents, then reload "
    "JupyterLab). Pick a generated mask family and move the seed slider instead."
)
MOVE_EVENT_WAIT_MS = 15
CANVAS_CSS_CLASS = "pconv-mask-canvas"  # lets a browser test find the drawing surface ...
PAINTER_CSS_CLASS = "pconv-mask-painter"  # ... the whole painter ...
RESULTS_CSS_CLASS = "pconv-inpainted"  # ... and the results


class InpaintError(RuntimeError):
    """A model raised while inpainting; the message names the model and the original error."""


def png_bytes(image: Tensor) -> bytes:
    """A (3, H, W) image in [0, 1] → PNG bytes (RGB, 8 bits, values rounded)."""
    array = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def overlay_png(image: Tensor, mask: Tensor) -> bytes:
    """PNG bytes of ``image`` (3, H, W) with the holes of ``mask`` (0 = hole) tinted magenta."""
    return png_bytes(overlay_holes(image, mask))


def image_from_bytes(data: bytes) -> Tensor:
    """Encoded image bytes (PNG, JPEG, ...) → a (3, H, W) float tensor in [0, 1]; unreadable bytes raise ValueError."""
    try:
        with Image.open(io.BytesIO(bytes(data))) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise ValueError(
            f"cannot read the uploaded file as an image (PNG, JPEG, ...): Pillow says {type(error).__name__}"
        ) from error
    return to_tensor(np.asarray(rgb))


def fit_image(image: Tensor, max_side: int) -> Tensor:
    """Shrink a (3, H, W) image (antialiased, aspect kept) so its longer side is at most ``max_side``."""
    height, width = image.shape[-2:]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    resized = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].clamp(0, 1)


def as_inpainter(model: nn.Module, device: torch.device | str | None = None) -> Inpainter:
    """Wrap a model ``forward(image, mask)`` as an inpainter: eval mode, no grad, inputs moved to ``device``."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()

    def run(image: Tensor, mask: Tensor) -> Tensor:
        with torch.no_grad():
            return model(image.to(device), mask.to(device)).float().cpu()

    return run


def _load_ipyevents():
    """The ipyevents module, or None when it is not installed."""
    try:
        return importlib.import_module("ipyevents")
    except ImportError:
        return None


def _describe(error: BaseException) -> str:
    """What the status line says about ``error``: our own messages as they are, anything else with its type."""
    message = str(error)
    if isinstance(error, (ValueError, InpaintError)) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _check_image(image: Tensor) -> Tensor:
    if isinstance(image, Tensor) and image.dim() == 3:
        image = image[None]
    check_batch(image, "image")
    if image.shape[:2] != (1, 3):
        raise ValueError(f"image must be one RGB image shaped (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
    return image[0].detach().float().cpu()


class MaskPainter(widgets.VBox):
    """Draw a hole mask on ``image`` and inpaint it with ``models`` (name → ``(image, mask) -> prediction``).

    ``image``: (3, H, W) or (1, 3, H, W) in [0, 1], shrunk to ``max_side`` if larger. ``display_width``
    shows the image at that many CSS pixels wide (strokes are mapped back to image pixels);
    ``result_width`` is the width of each result panel (they wrap onto new rows when there are many).
    """

    def __init__(
        self,
        image: Tensor,
        models: Mapping[str, Inpainter] | None = None,
        brush_size: int = 15,
        display_width: int | None = None,
        max_side: int = 512,
        result_width: int = 256,
    ):
        self.models = dict(models or {})
        self.max_side = max_side
        self.display_width = display_width
        self.result_width = result_width
        self.results: dict[str, Tensor] = {}
        self._result_panels: dict[str | None, widgets.VBox] = {}
        self._ipyevents = _load_ipyevents()
        self._build_widgets(brush_size)
        super().__init__(children=self._layout())
        self.add_class(PAINTER_CSS_CLASS)
        self.set_image(image)

    # ---- construction ------------------------------------------------------------------------
    def _build_widgets(self, brush_size: int) -> None:
        image_layout = widgets.Layout(width=f"{self.display_width}px" if self.display_width else None)
        self.image_widget = widgets.Image(format="png", layout=image_layout)
        self.image_widget.add_class(CANVAS_CSS_CLASS)
        self.brush_slider = widgets.IntSlider(value=brush_size, min=1, max=max(80, brush_size), description="brush")
        self.mode_toggle = widgets.ToggleButtons(
            options=["draw", "erase"], value="draw", style={"button_width": "64px"}
        )
        self.undo_button = widgets.Button(description="undo", icon="undo", layout=widgets.Layout(width="90px"))
        self.redo_button = widgets.Button(description="redo", icon="redo", layout=widgets.Layout(width="90px"))
        self.clear_button = widgets.Button(description="clear", icon="eraser", layout=widgets.Layout(width="90px"))
        self.kind_picker = widgets.Dropdown(options=list(MASK_KINDS), value="free_form", description="mask")
        self.seed_slider = widgets.IntSlider(value=0, min=0, max=999, description="seed")
        self.generate_button = widgets.Button(description="use generated mask", layout=widgets.Layout(width="auto"))
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload photo")
        names = tuple(self.models)
        self.model_picker = widgets.SelectMultiple(
            options=names, value=names, description="models", rows=min(6, max(1, len(names)))
        )
        self.inpaint_button = widgets.Button(description="Inpaint", button_style="primary", disabled=not names)
        self.status = widgets.HTML()
        self.results_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.results_box.add_class(RESULTS_CSS_CLASS)

        self.brush_slider.observe(lambda change: self._guarded("Brush", self._on_brush, change), names="value")
        self.mode_toggle.observe(lambda change: self._guarded("Mode", self._on_mode, change), names="value")
        self.undo_button.on_click(lambda _: self._guarded("Undo", self.undo))
        self.redo_button.on_click(lambda _: self._guarded("Redo", self.redo))
        self.clear_button.on_click(lambda _: self._guarded("Clear", self.clear))
        self.generate_button.on_click(lambda _: self._guarded("Generated mask", self.use_generated_mask))
        self.upload.observe(self._on_upload, names="value")
        self.inpaint_button.on_click(lambda _: self._inpaint_clicked())
        if self._ipyevents is None:
            for control in (self.seed_slider, self.kind_picker):
                control.observe(lambda _: self._guarded("Generated mask", self.use_generated_mask), names="value")
        else:
            self._listen_to_pointer()

    def _listen_to_pointer(self) -> None:
        presses = self._ipyevents.Event(
            source=self.image_widget, watched_events=["mousedown", "mouseup", "mouseleave"], prevent_default_action=True
        )
        moves = self._ipyevents.Event(
            source=self.image_widget,
            watched_events=["mousemove"],
            throttle_or_debounce="throttle",
            wait=MOVE_EVENT_WAIT_MS,
        )
        for source in (presses, moves):
            source.on_dom_event(lambda event: self._guarded("Drawing", self.handle_event, event))
        self._pointer_events = (presses, moves)

    def _layout(self) -> list[widgets.Widget]:
        drawing_tools = widgets.HBox(
            [self.brush_slider, self.mode_toggle, self.undo_button, self.redo_button, self.clear_button]
        )
        generated = widgets.HBox([self.kind_picker, self.seed_slider, self.generate_button])
        running = widgets.HBox([self.upload, self.model_picker, self.inpaint_button])
        return [drawing_tools, generated, self.image_widget, self.status, running, self.results_box]

    # ---- state --------------------------------------------------------------------------------
    @property
    def pointer_events(self) -> bool:
        """True when the mouse can draw (ipyevents is installed)."""
        return self._ipyevents is not None

    @property
    def image(self) -> Tensor:
        """The photo being painted on, (3, H, W) in [0, 1]."""
        return self._image

    def set_image(self, image: Tensor) -> None:
        """Paint on a new photo (shrunk to ``max_side``); the drawing, history and results start afresh."""
        self._image = fit_image(_check_image(image), self.max_side)
        height, width = self._image.shape[-2:]
        self.canvas = MaskCanvas(height, width, brush_size=self.brush_slider.value)
        self.controller = PointerController(self.canvas, erase=self.mode_toggle.value == "erase")
        self.canvas.on_change(self.refresh)
        self.results = {}
        self.results_box.children = ()
        self.refresh()

    def refresh(self) -> None:
        """Redraw the overlay and the status line, and enable only the history buttons that can act.

        Runs after every change of ``canvas`` (however it was made), so code and mouse stay in step.
        """
        self.image_widget.value = overlay_png(self._image, self.canvas.mask)
        self.undo_button.disabled = not self.canvas.can_undo
        self.redo_button.disabled = not self.canvas.can_redo
        height, width = self._image.shape[-2:]
        lines = [f"{width}×{height} photo, holes cover {100 * self.canvas.hole_ratio:.1f}% of it."]
        if self._ipyevents is None:
            lines.append(NO_IPYEVENTS_MESSAGE)
        elif not self.models:
            lines.append("No models were given, so there is nothing to inpaint with.")
        self.status.value = "<br>".join(lines)

    # ---- actions (each button calls one of these) ------------------------------------------------
    def handle_event(self, event: Mapping) -> None:
        """One ipyevents pointer event → the controller (the canvas then tells the view to redraw)."""
        self.controller.handle(event)

    def undo(self) -> None:
        self.canvas.undo()

    def redo(self) -> None:
        self.canvas.redo()

    def clear(self) -> None:
        self.canvas.clear()

    def use_generated_mask(self) -> None:
        """Start from the generated mask chosen by the family picker and the seed slider (undoable)."""
        self.canvas.start_from(self.kind_picker.value, self.seed_slider.value)

    def load_upload(self, value) -> None:
        """Paint on the image from a ``FileUpload`` value (the last file uploaded)."""
        if not value:
            return
        self.set_image(image_from_bytes(value[-1]["content"]))

    def inpaint(self) -> dict[str, Tensor]:
        """Run every chosen model on the photo and the current mask; show and return the composites."""
        image, mask = self._image[None], self.canvas.mask
        results = {}
        for name in self.model_picker.value:
            try:
                with torch.no_grad():
                    prediction = self.models[name](image * mask, mask)
            except Exception as error:
                raise InpaintError(f"model {name!r} raised {type(error).__name__}: {error}") from error
            if not isinstance(prediction, Tensor) or tuple(prediction.shape) != tuple(image.shape):
                shape = tuple(prediction.shape) if isinstance(prediction, Tensor) else type(prediction).__name__
                raise ValueError(f"model {name!r} must return a tensor shaped {tuple(image.shape)}, got {shape}")
            results[name] = composite(prediction.detach().float().cpu().clamp(0, 1), image, mask)
        self.results = results
        self._show_results()
        return results

    def _inpaint_clicked(self) -> None:
        """The button's handler: ``inpaint()`` with the button off while it runs and any failure shown, not raised."""
        self.status.value = "Inpainting ..."
        self.inpaint_button.disabled = True
        try:
            if self._guarded("Inpainting", self.inpaint) is None:
                self.results = {}
                self.results_box.children = ()  # no composites that the message contradicts
            else:
                self.refresh()
        finally:
            self.inpaint_button.disabled = not self.models

    def _guarded(self, action: str, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)``; an exception is shown in the status line instead of raised (returns None then).

        The state changes only through ``function``: a failing action leaves the photo, drawing and history as
        the action left them, and the next change of the canvas redraws the status line as usual.
        """
        try:
            return function(*args)
        except Exception as error:  # whatever a model, a file or an event raises: the widget must stay usable
            self.refresh()
            self.status.value += f"<br>{html.escape(action)} failed: {html.escape(_describe(error))}"
            return None

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget view, plus a PNG of the photo and holes as they are now for viewers without the widget state."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        height, width = self._image.shape[-2:]
        bundle["image/png"] = base64.b64encode(overlay_png(self._image, self.canvas.mask)).decode("ascii")
        bundle["text/plain"] = f"MaskPainter on a {width}×{height} photo (draw with the mouse in a running notebook)"
        return bundle

    def _on_upload(self, change) -> None:
        """An upload, read and shown (or its failure shown); then the picker is emptied so the same file can come again."""
        if change["new"]:
            self._guarded("Upload", self.load_upload, change["new"])
            self.upload.value = ()

    def _on_brush(self, change) -> None:
        self.canvas.brush_size = float(change["new"])
        self.controller.brush_size = float(change["new"])

    def _on_mode(self, change) -> None:
        self.controller.erase = change["new"] == "erase"

    def _show_results(self) -> None:
        """One labelled image per result, after the holes; panels are reused by name (no widget pile-up)."""
        panels = [(None, "holes", overlay_png(self._image, self.canvas.mask))]  # None: no model has this key
        panels += [(name, name, png_bytes(result[0])) for name, result in self.results.items()]
        shown = []
        for key, title, data in panels:
            if key not in self._result_panels:
                layout = widgets.Layout(width=f"{self.result_width}px")
                self._result_panels[key] = widgets.VBox(
                    [widgets.Label(title), widgets.Image(format="png", layout=layout)]
                )
            panel = self._result_panels[key]
            panel.children[1].value = data
            shown.append(panel)
        self.results_box.children = tuple(shown)
