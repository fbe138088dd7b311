"""Lesson 09's three feature stacks of similar cost, trained alike, and LaMa's resolution ablation with them.

The stacks (C = 16 channels at full resolution, no striding), each wrapped by ``StackInpainter``:

- ``"plain 3×3"``: 6 × (3×3 conv, BN, ReLU), theoretical receptive field 1 + 6·2 = 13 px;
- ``"dilated 3×3"``: the same with dilations 1, 2, 4, …, 32, field 1 + 2·63 = 127 px;
- ``"FFC blocks"``: 3 FFC ResNet blocks (two 3×3 FFCs each, 75 % of the channels global), the whole image.

    y = σ(W_out · stack(W_in · [I ⊙ m, 1 − m]))          W_in: 1×1 conv 4 → C,  W_out: 1×1 conv C → 3

(m = 1 on known pixels). ``train_alike`` trains several inpainters on the same batches in the same order, each with
its own Adam (lr 2·10⁻³), on the L1 loss weighing the hole ``hole_weight`` = 6 times the known pixels (the PConv
paper's 1 : 6):

    L = mean( |y − I| · (1 + (hole_weight − 1) · (1 − m)) )

The training data are random patches of the five training photos (``SamplePatches(split="train")``) with LaMa's
large training masks (``"mixed"``: thick strokes or boxes). The test regions are patches of the three held-out photos
cut at native resolution with 4× the training side, resized to 1×, 2×, 4× by ``resolution.at_scale``.

``band_masks`` draws the fair test's holes: one band across the whole patch, horizontal or vertical, of width
⌈fraction · side⌉, at least ``margin`` pixels from the patch's border, so known pixels lie on both sides. Scaled with
the image, a band of half the side is 16, 32 and 64 px wide at 1×, 2× and 4× of a 32² training size: beyond the
plain stack's reach (``beyond_reach``: hole pixels without a known pixel in the field × field window centred on them).

``save_trained`` / ``load_trained`` store the three trained inpainters with their losses and training settings:
``TRAINED`` holds the lesson's fast-mode run (seed 0), so that fast mode need not retrain them.

``seed_run`` is one training seed of the whole experiment (train the three, score them and the baselines on both
test sets at every scale); ``benchmarks/ffc_fair_test.py`` runs it for several seeds and stores the figures that
``seed_table`` prints.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lessons import masks as mask_generators
from pconv_lessons.baselines import biharmonic, fill_with_mean
from pconv_lessons.course.ablation import Comparison, compare, hole_l1_per_image
from pconv_lessons.course.resolution import Method, at_scale, inpaint
from pconv_lessons.data import MaskSource, SamplePatches
from pconv_lessons.layers import FFCResnetBlock
from pconv_lessons.validation import check_int
from pconv_lessons.viz import overlay_holes

CHANNELS = 16
SCALES = (1, 2, 4)
PLAIN, DILATED, FFC_BLOCKS = "plain 3×3", "dilated 3×3", "FFC blocks"
PLAIN_FIELD = 13  # 1 + 6 · 2: six 3×3 convs; the 1×1 convs around the stack add nothing
BASELINES: dict[str, Method] = {"biharmonic": biharmonic, "mean fill": fill_with_mean}
PAIRS = ((FFC_BLOCKS, DILATED), (FFC_BLOCKS, PLAIN), (DILATED, PLAIN), (PLAIN, "mean fill"), (DILATED, "mean fill"),
         (FFC_BLOCKS, "mean fill"), (FFC_BLOCKS, "biharmonic"))
SEED_ROWS = (*(f"{FFC_BLOCKS} − {other}" for other in (PLAIN, DILATED, "mean fill", "biharmonic")),
             f"{PLAIN} − mean fill", f"{DILATED} − mean fill")  # the columns of seed_table in lesson 09
SEED_RUNS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "ffc_fair_test.json"
TRAINED = Path(__file__).resolve().parents[2] / "data" / "lesson09" / "stacks_seed0.pt"


def conv_bn_relu_stack(dilations: Iterable[int], channels: int = CHANNELS) -> nn.Sequential:
    """One (3×3 conv with the given dilation, BN, ReLU) per entry, ``channels`` wide, the size kept."""
    layers: list[nn.Module] = []
    for dilation in dilations:
        layers += [nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
                   nn.BatchNorm2d(channels), nn.ReLU()]
    return nn.Sequential(*layers)


def make_stacks(seed: int, channels: int = CHANNELS) -> dict[str, nn.Module]:
    """The plain, dilated and FFC stacks (module docstring), initialised after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return {
        PLAIN: conv_bn_relu_stack([1] * 6, channels),
        DILATED: conv_bn_relu_stack([2**i for i in range(6)], channels),
        FFC_BLOCKS: nn.Sequential(*[FFCResnetBlock(channels, ratio=0.75) for _ in range(3)]),
    }


class StackInpainter(nn.Module):
    """σ(W_out · stack(W_in · [I ⊙ m, 1 − m])) with 1×1 convs around a stack of ``channels`` channels."""

    def __init__(self, stack: nn.Module, channels: int = CHANNELS) -> None:
        super().__init__()
        self.stack = stack
        self.into = nn.Conv2d(4, channels, 1)
        self.out = nn.Conv2d(channels, 3, 1)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        x = torch.cat([image * mask, 1 - mask], dim=1)
        return torch.sigmoid(self.out(self.stack(self.into(x))))


def training_batches(size: int, batch: int, seed: int) -> Callable[[int], tuple[Tensor, Tensor]]:
    """step → (images (batch, 3, size, size), masks): patches of the training photos with ``"mixed"`` masks."""
    pairs = SamplePatches(size, split="train", mask_fn=MaskSource("mixed"), seed=seed)

    def batch_at(step: int) -> tuple[Tensor, Tensor]:
        chosen = [pairs[step * batch + index] for index in range(batch)]
        return torch.stack([image for image, _ in chosen]), torch.stack([mask for _, mask in chosen])

    return batch_at


def train_alike(models: Mapping[str, nn.Module], batch_at: Callable[[int], tuple[Tensor, Tensor]], steps: int,
                lr: float = 2e-3, hole_weight: float = 6.0,
                device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Train every model on the same batches in the same order (module docstring); returns each one's losses."""
    steps = check_int(steps, "steps", 1)
    optimisers = {name: torch.optim.Adam(model.parameters(), lr=lr) for name, model in models.items()}
    losses: dict[str, list[float]] = {name: [] for name in models}
    for step in range(steps):
        image, mask = (t.to(device) for t in batch_at(step))
        weight = 1 + (hole_weight - 1) * (1 - mask)
        for name, model in models.items():
            model.train()
            loss = ((model(image, mask) - image).abs() * weight).mean()
            optimisers[name].zero_grad()
            loss.backward()
            optimisers[name].step()
            losses[name].append(loss.item())
    for model in models.values():
        model.eval()
    return losses


def training_settings(seed: int, train_size: int, batch: int, steps: int) -> dict[str, int]:
    """What identifies a training run of the three stacks (``load_trained`` compares it)."""
    return {"seed": seed, "train_size": train_size, "batch": batch, "steps": steps}


def save_trained(models: Mapping[str, StackInpainter], losses: Mapping[str, list[float]], settings: Mapping[str, int],
                 path: Path | str = TRAINED) -> None:
    """Write the inpainters' weights, their losses and the training ``settings`` to ``path`` (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"settings": dict(settings), "losses": {name: list(values) for name, values in losses.items()},
             "weights": {name: {key: value.detach().cpu() for key, value in model.state_dict().items()}
                         for name, model in models.items()}}
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def load_trained(settings: Mapping[str, int], path: Path | str = TRAINED,
                 device: torch.device | str = "cpu") -> tuple[dict[str, StackInpainter], dict[str, list[float]]] | None:
    """The stored inpainters (eval mode, on ``device``) and losses if ``path`` holds a run with these ``settings``,
    else None (no file, or a run with another seed, size, batch or step count)."""
    path = Path(path)
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["settings"] != dict(settings):
        return None
    models = {name: StackInpainter(stack) for name, stack in make_stacks(int(settings["seed"])).items()}
    for name, model in models.items():
        model.load_state_dict(state["weights"][name])
        model.to(device).eval()
    return models, state["losses"]


def test_regions(count: int, size: int, seed: int) -> Tensor:
    """(count, 3, 4·size, 4·size) patches of the held-out photos at native resolution (``at_scale`` resizes them)."""
    no_mask = lambda side, index: torch.ones(1, side, side)  # noqa: E731 — the masks are drawn at 1× apart
    patches = SamplePatches(size * SCALES[-1], split="test", mask_fn=no_mask, seed=seed, scale=(1.0, 1.0))
    return torch.stack([patches[index][0] for index in range(count)])


def band_masks(n: int, size: int, fraction: float = 0.5, seed: int = 0, margin: int = 2) -> Tensor:
    """(n, 1, size, size) masks, each with one horizontal or vertical band of ⌈fraction · size⌉ hole pixels across
    the patch, its offset uniform among those that keep ``margin`` known pixels on both sides (seeded)."""
    n, size, margin = check_int(n, "n", 1), check_int(size, "size", 1), check_int(margin, "margin", 0)
    width = math.ceil(fraction * size)
    if not 0 < fraction < 1 or width > size - 2 * margin:
        raise ValueError(f"fraction must leave a band of 1 … size − 2·margin = {size - 2 * margin} pixels, "
                         f"got fraction {fraction} (a band of {width}) at size {size}")
    rng = np.random.default_rng(seed)
    masks = torch.ones(n, 1, size, size)
    for index in range(n):
        start = int(rng.integers(margin, size - margin - width + 1))
        if rng.random() < 0.5:
            masks[index, :, start : start + width, :] = 0
        else:
            masks[index, :, :, start : start + width] = 0
    return masks


def beyond_reach(masks: Tensor, field: int) -> Tensor:
    """(N,) share of each mask's hole pixels with no known pixel in the ``field`` × ``field`` window around them."""
    field = check_int(field, "field", 1)
    if field % 2 == 0:
        raise ValueError(f"field must be odd (a window centred on the pixel), got {field}")
    known_nearby = F.max_pool2d(masks, field, stride=1, padding=field // 2)
    hole = 1 - masks
    return (hole * (1 - known_nearby)).sum(dim=(1, 2, 3)) / hole.sum(dim=(1, 2, 3))


def score_at_scales(methods: Mapping[str, Method], regions: Tensor, base_masks: Tensor,
                    pairs: Iterable[tuple[str, str]] = PAIRS, scales: Iterable[int] = SCALES,
                    device: torch.device | str | None = None) -> tuple[dict[int, Comparison], dict[int, dict[str, Tensor]]]:
    """Hole L1 of every method at every scale (``compare``: intervals and paired verdicts), and each method's fill of
    the first image per scale (with ``"input"`` and ``"original"``) for a figure."""
    pairs = list(pairs)
    comparisons, examples = {}, {}
    for scale in scales:
        images, masks = at_scale(regions, base_masks, scale)
        filled = {name: inpaint(method, images, masks, device=device) for name, method in methods.items()}
        comparisons[scale] = compare({name: hole_l1_per_image(p, images, masks) for name, p in filled.items()}, pairs)
        examples[scale] = {"input": overlay_holes(images[0], masks[0]), **{name: p[0] for name, p in filled.items()},
                           "original": images[0]}
    return comparisons, examples


def seed_run(seed: int, train_size: int = 32, batch: int = 8, steps: int = 600, test_count: int = 48,
             test_seed: int = 0, device: torch.device | str = "cpu",
             save_to: Path | str | None = None) -> dict[str, dict[int, Comparison]]:
    """One training seed of lesson 09's experiment: the three stacks initialised and fed batches with ``seed``,
    scored with the baselines on the fixed test set of ``test_seed`` (the lesson's: regions ``test_seed`` + 1,
    ``"mixed"`` masks ``test_seed`` + 5, bands ``test_seed`` + 6). Returns {"mixed": …, "bands": …}, scale → table.
    ``save_to``: where ``save_trained`` writes the trained inpainters (None: nowhere)."""
    models = {name: StackInpainter(stack).to(device) for name, stack in make_stacks(seed).items()}
    losses = train_alike(models, training_batches(train_size, batch, seed), steps, device=device)
    if save_to is not None:
        save_trained(models, losses, training_settings(seed, train_size, batch, steps), save_to)
    methods = {**models, **BASELINES}
    regions = test_regions(test_count, train_size, test_seed + 1)
    holes = {"mixed": mask_generators.generate("mixed", test_count, train_size, seed=test_seed + 5),
             "bands": band_masks(test_count, train_size, seed=test_seed + 6)}
    return {kind: score_at_scales(methods, regions, masks, device=device)[0] for kind, masks in holes.items()}


def comparison_record(comparison: Comparison) -> dict[str, list[float]]:
    """A table as JSON-able lists: method or "first − second" → [mean, low, high]."""
    record = {name: list(interval) for name, interval in comparison.methods.items()}
    record.update({f"{a} − {b}": list(interval) for (a, b), interval in comparison.differences.items()})
    return record


def load_seed_runs(path: Path = SEED_RUNS) -> dict:
    """The stored seed runs of ``benchmarks/ffc_fair_test.py``: {"settings": …, "runs": {seed: {kind: {scale: …}}}}."""
    return json.loads(Path(path).read_text())


def seed_table(runs: Mapping, kind: str, rows: Iterable[str]) -> str:
    """A text table: one line per seed and scale, mean [95 % interval] of each of ``rows`` (hole L1 × 100)."""
    rows = list(rows)
    cells = lambda values: [f"{values[row][0]:+.2f} [{values[row][1]:+.2f}, {values[row][2]:+.2f}]" for row in rows]  # noqa: E731
    width = max(22, *(len(row) for row in rows))
    lines = ["seed scale " + " ".join(f"{row:>{width}s}" for row in rows)]
    for seed, tables in runs.items():
        for scale, record in tables[kind].items():
            lines.append(f"{seed:>4s} {scale:>4s}× " + " ".join(f"{cell:>{width}s}" for cell in cells(record)))
    return "\n".join(lines)
