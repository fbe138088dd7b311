"""MaskPainter without a browser: the PNG it shows, pointer events, buttons, uploads, degraded mode and Inpaint."""

import base64
import datetime
import json
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pconv_lessons.widgets import canvas as canvas_module
from pconv_lessons.widgets import MaskPainter, as_inpainter, fit_image, image_from_bytes, png_bytes
from pconv_lessons.widgets.view import NO_IPYEVENTS_MESSAGE, InpaintError

HEIGHT, WIDTH = 24, 32


def decode(data):
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB")).astype(np.int64)


@pytest.fixture
def photo():
    """A random photo whose values are exact 8-bit levels, so PNG round trips are exact."""
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, HEIGHT, WIDTH), generator=generator).float() / 255


@pytest.fixture
def fake_masks(monkeypatch):
    """A stand-in for pconv_lessons.masks.generate: the top ``seed + 1`` rows are holes."""

    def generate(kind, n, size, seed=None, device="cpu"):
        mask = torch.ones(n, 1, *size)
        mask[..., : seed + 1, :] = 0
        return mask

    monkeypatch.setattr(canvas_module, "generate", generate)


def mean_colour_fill(image, mask):
    """Fills with the mean known colour: a simple, exactly predictable 'model'."""
    known = mask.expand_as(image)
    mean = (image * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)
    return mean.expand_as(image).clone()


def test_the_shown_png_is_the_photo_with_magenta_holes(photo):
    painter = MaskPainter(photo, brush_size=3)
    painter.canvas.stroke([(5, 10), (15, 10)])
    shown = decode(painter.image_widget.value)
    assert shown.shape == (HEIGHT, WIDTH, 3)
    original = np.rint(photo.permute(1, 2, 0).numpy() * 255).astype(np.int64)
    hole = np.zeros((HEIGHT, WIDTH), dtype=bool)
    hole[9:12, 4:17] = True  # the hand-counted 3 × 13 capsule
    magenta = np.array([255, 0, 255])
    expected = original.copy()
    expected[hole] = np.rint(0.4 * original[hole] + 0.6 * magenta)
    assert np.array_equal(shown, expected)


def test_pointer_events_draw_and_redraw(photo):
    painter = MaskPainter(photo, brush_size=1, display_width=2 * WIDTH)
    before = painter.image_widget.value
    for kind in ("mousedown", "mouseup"):
        painter.handle_event(
            {
                "type": kind,
                "relativeX": 20,
                "relativeY": 41,
                "button": 0,
                "boundingRectWidth": 2 * WIDTH,
                "boundingRectHeight": 2 * HEIGHT,
            }
        )
    assert torch.nonzero(painter.canvas.mask[0, 0] == 0).tolist() == [[20, 10]]
    assert painter.image_widget.value != before
    assert not np.array_equal(decode(painter.image_widget.value)[20, 10], decode(before)[20, 10])
    assert "0.1%" in painter.status.value  # 1 of 768 pixels


def test_controls_reach_the_canvas_and_controller(photo):
    painter = MaskPainter(photo, brush_size=3)
    assert painter.undo_button.disabled and painter.redo_button.disabled
    painter.brush_slider.value = 5
    painter.controller.down(12, 12)
    painter.controller.up()
    assert int((painter.canvas.mask == 0).sum()) == 21
    painter.mode_toggle.value = "erase"
    painter.brush_slider.value = 1
    painter.controller.down(12, 12)
    painter.controller.up()
    assert int((painter.canvas.mask == 0).sum()) == 20
    painter.undo_button.click()
    assert int((painter.canvas.mask == 0).sum()) == 21 and not painter.redo_button.disabled
    painter.redo_button.click()
    assert int((painter.canvas.mask == 0).sum()) == 20
    painter.clear_button.click()
    assert painter.canvas.hole_ratio == 0 and not painter.undo_button.disabled


def test_generated_mask_button_uses_family_and_seed(photo, fake_masks):
    painter = MaskPainter(photo)
    painter.kind_picker.value = "box"
    painter.seed_slider.value = 4
    assert painter.canvas.hole_ratio == 0  # with ipyevents, only the button applies the choice
    painter.generate_button.click()
    assert painter.canvas.hole_ratio == pytest.approx(5 / HEIGHT)


def test_without_ipyevents_the_view_degrades_to_generated_masks(photo, fake_masks, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipyevents", None)  # makes `import ipyevents` fail
    painter = MaskPainter(photo)
    assert not painter.pointer_events
    assert NO_IPYEVENTS_MESSAGE in painter.status.value
    painter.seed_slider.value = 2
    assert painter.canvas.hole_ratio == pytest.approx(3 / HEIGHT)
    painter.seed_slider.value = 6
    assert painter.canvas.hole_ratio == pytest.approx(7 / HEIGHT)


def test_with_ipyevents_the_status_line_has_no_warning(photo):
    painter = MaskPainter(photo, models={"fill": mean_colour_fill})
    assert painter.pointer_events and "ipyevents" not in painter.status.value


def test_inpaint_button_shows_composites_of_the_right_size(photo):
    calls = []

    def recording_fill(image, mask):
        calls.append((tuple(image.shape), tuple(mask.shape)))
        return mean_colour_fill(image, mask)

    models = {"mean colour": recording_fill, "black": lambda image, mask: torch.zeros_like(image)}
    painter = MaskPainter(photo, models=models, brush_size=5)
    painter.canvas.stroke([(8, 8), (20, 14)])
    painter.inpaint_button.click()
    assert calls == [((1, 3, HEIGHT, WIDTH), (1, 1, HEIGHT, WIDTH))]
    assert list(painter.results) == ["mean colour", "black"]
    mask = painter.canvas.mask
    for result in painter.results.values():
        assert result.shape == (1, 3, HEIGHT, WIDTH)
        assert torch.equal(result * mask, photo[None] * mask)  # known pixels kept
    assert torch.all(painter.results["black"] * (1 - mask) == 0)
    panels = painter.results_box.children
    assert [panel.children[0].value for panel in panels] == ["holes", "mean colour", "black"]
    for panel in panels:
        assert decode(panel.children[1].value).shape == (HEIGHT, WIDTH, 3)
    shown_black = decode(panels[2].children[1].value)
    assert np.all(shown_black[mask[0, 0].numpy() == 0] == 0)


def test_models_never_see_the_photo_in_the_holes(photo):
    painter = MaskPainter(photo, models={"echo": lambda image, mask: image.clone()}, brush_size=5)
    painter.canvas.stroke([(8, 8), (20, 14)])
    hole = painter.canvas.mask == 0
    result = painter.inpaint()["echo"]
    assert torch.all(result[hole.expand_as(result)] == 0)


def test_inpainting_again_reuses_the_panels_with_new_pictures(photo):
    painter = MaskPainter(photo, models={"fill": mean_colour_fill})
    painter.canvas.stroke([(8, 8)], brush_size=5)
    painter.inpaint()
    first = painter.results_box.children
    pictures = [panel.children[1].value for panel in first]
    painter.canvas.stroke([(20, 16)], brush_size=5)
    painter.inpaint()
    assert painter.results_box.children == first
    assert all(panel.children[1].value != old for panel, old in zip(first, pictures))


def test_only_the_picked_models_run(photo):
    painter = MaskPainter(photo, models={"a": mean_colour_fill, "b": mean_colour_fill})
    painter.model_picker.value = ("b",)
    assert list(painter.inpaint()) == ["b"]


def test_a_model_returning_the_wrong_shape_is_reported(photo):
    painter = MaskPainter(photo, models={"half": lambda image, mask: image[..., ::2, ::2]})
    with pytest.raises(ValueError, match="'half' must return a tensor shaped"):
        painter.inpaint()
    painter.inpaint_button.click()  # the button shows the failure instead of raising
    assert "Inpainting failed: model &#x27;half&#x27; must return a tensor shaped" in painter.status.value


def test_a_model_named_holes_gets_its_own_panel(photo):
    painter = MaskPainter(photo, models={"holes": mean_colour_fill})
    painter.canvas.stroke([(8, 8)], brush_size=5)
    painter.inpaint()
    first, second = painter.results_box.children
    assert first is not second and [p.children[0].value for p in (first, second)] == ["holes", "holes"]
    assert decode(second.children[1].value)[8, 8].tolist() != decode(first.children[1].value)[8, 8].tolist()


def test_no_models_disables_inpaint(photo):
    painter = MaskPainter(photo)
    assert painter.inpaint_button.disabled and "nothing to inpaint" in painter.status.value


def test_an_uploaded_image_replaces_the_photo_and_the_drawing(photo):
    painter = MaskPainter(photo, brush_size=3, max_side=40)
    painter.canvas.stroke([(3, 3)])
    upload = np.zeros((60, 80, 3), dtype=np.uint8)
    upload[..., 1] = 200
    buffer = io.BytesIO()
    Image.fromarray(upload).save(buffer, format="PNG")
    painter.load_upload(({"name": "green.png", "content": memoryview(buffer.getvalue())},))
    assert painter.image.shape == (3, 30, 40)  # shrunk so the longer side is max_side
    assert painter.canvas.mask.shape == (1, 1, 30, 40) and painter.canvas.hole_ratio == 0
    assert decode(painter.image_widget.value).shape == (30, 40, 3)
    assert torch.allclose(painter.image[1], torch.full((30, 40), 200 / 255), atol=1e-6)


def test_unreadable_upload_raises_a_value_error():
    with pytest.raises(ValueError, match="cannot read"):
        image_from_bytes(b"not an image")


def out_of_memory(image, mask):
    raise RuntimeError("CUDA out of memory")


def upload_value(name, content):
    """What ``FileUpload.value`` holds after the browser sent one file (ipywidgets 8)."""
    return ({"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)},)


def test_a_model_that_raises_is_reported_and_the_painter_stays_usable(photo):
    painter = MaskPainter(photo, models={"broken": out_of_memory, "fill": mean_colour_fill}, brush_size=5)
    painter.canvas.stroke([(8, 8)])
    painter.model_picker.value = ("fill",)
    painter.inpaint()
    drawn = painter.canvas.mask.clone()
    painter.model_picker.value = ("broken", "fill")
    painter.inpaint_button.click()
    assert "Inpainting ..." not in painter.status.value
    assert "Inpainting failed: model &#x27;broken&#x27; raised RuntimeError: CUDA out of memory" in painter.status.value
    assert not painter.inpaint_button.disabled
    assert painter.results == {} and painter.results_box.children == ()  # no stale composites beside the message
    assert torch.equal(painter.canvas.mask, drawn) and painter.canvas.can_undo
    painter.canvas.stroke([(20, 16)])  # still draws, and the next change redraws the status line
    assert "failed" not in painter.status.value
    painter.model_picker.value = ("fill",)
    painter.inpaint_button.click()
    assert list(painter.results) == ["fill"] and "failed" not in painter.status.value


def test_inpaint_from_code_names_the_model_that_raised(photo):
    painter = MaskPainter(photo, models={"broken": out_of_memory})
    with pytest.raises(InpaintError, match="model 'broken' raised RuntimeError: CUDA out of memory") as caught:
        painter.inpaint()
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize("error", [KeyError("weights"), TypeError(), AssertionError("no")])
def test_any_exception_of_a_model_is_shown_in_the_status_line(photo, error):
    def failing(image, mask):
        raise error

    painter = MaskPainter(photo, models={"m": failing})
    painter.inpaint_button.click()
    assert f"raised {type(error).__name__}" in painter.status.value and not painter.inpaint_button.disabled


def test_an_unreadable_upload_is_reported_and_the_painter_stays_usable(photo):
    painter = MaskPainter(photo, brush_size=3)
    painter.canvas.stroke([(3, 3)])
    before = painter.canvas.mask.clone()
    painter.upload.value = upload_value("notes.png", b"not an image")  # what the browser sends: no exception escapes
    assert "Upload failed: cannot read the uploaded file as an image" in painter.status.value
    assert "0x" not in painter.status.value  # no memory address from Pillow's message
    assert torch.equal(painter.image, photo) and torch.equal(painter.canvas.mask, before)
    assert painter.upload.value == ()  # emptied, so a retry of the same file is a change again
    buffer = io.BytesIO()
    Image.fromarray(np.full((10, 12, 3), 50, dtype=np.uint8)).save(buffer, format="PNG")
    painter.upload.value = upload_value("grey.png", buffer.getvalue())
    assert painter.image.shape == (3, 10, 12) and "failed" not in painter.status.value


def test_a_bad_pointer_event_is_reported_not_raised(photo):
    painter = MaskPainter(photo)
    for source in painter._pointer_events:
        source._handle_mouse_msg(source, {"event": "dom_event", "type": "mousedown"}, [])  # as ipyevents gets it
    assert "Drawing failed: KeyError" in painter.status.value
    painter.handle_event({"type": "mousedown", "relativeX": 5, "relativeY": 5, "boundingRectWidth": WIDTH,
                          "boundingRectHeight": HEIGHT})
    assert painter.canvas.hole_ratio > 0


def test_the_painter_shows_a_png_of_its_state_when_displayed(photo):
    painter = MaskPainter(photo, brush_size=3)
    bundle = painter._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert np.array_equal(decode(base64.b64decode(bundle["image/png"])), decode(png_bytes(photo)))  # no holes yet
    assert len(bundle["text/plain"]) < 100
    painter.canvas.stroke([(5, 10)])
    assert decode(base64.b64decode(painter._repr_mimebundle_()["image/png"])).tolist() != decode(png_bytes(photo)).tolist()


def test_png_bytes_round_trip(photo):
    assert np.array_equal(decode(png_bytes(photo)), np.rint(photo.permute(1, 2, 0).numpy() * 255))


def test_fit_image_keeps_small_images_and_aspect():
    image = torch.rand(3, 50, 100)
    assert fit_image(image, 200) is image
    assert fit_image(image, 40).shape == (3, 20, 40)


def test_bad_image_raises():
    with pytest.raises(ValueError, match="one RGB image"):
        MaskPainter(torch.rand(1, HEIGHT, WIDTH))


def test_as_inpainter_runs_a_module_in_eval_mode_without_grad():
    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(0.5))

        def forward(self, image, mask):
            assert not self.training and not torch.is_grad_enabled()
            return image * mask + self.scale * (1 - mask)

    run = as_inpainter(Probe().train(), device="cpu")
    image, mask = torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)
    out = run(image, mask)
    assert torch.allclose(out, torch.full_like(image, 0.5)) and not out.requires_grad


def test_lesson_12_stores_the_painter_as_a_png_of_its_first_state_and_no_widget_state():
    """A static viewer falls back to the PNGs only when the widget state is absent; the first has no holes yet."""
    path = Path(__file__).resolve().parents[1] / "notebooks" / "12_interactive_inpainting.ipynb"
    notebook = json.loads(path.read_text())
    assert "widgets" not in notebook["metadata"]
    outputs = [output for cell in notebook["cells"] if cell["cell_type"] == "code" for output in cell["outputs"]
               if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    assert outputs and all("image/png" in output["data"] for output in outputs)
    shown = decode(base64.b64decode(outputs[0]["data"]["image/png"]))  # the photo's painter, shown before any stroke
    magenta_tint = (shown[..., 0] > shown[..., 1] + 60) & (shown[..., 2] > shown[..., 1] + 60)
    assert shown.shape[1] >= 64 and magenta_tint.mean() < 0.01
