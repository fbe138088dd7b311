"""Checks for the PConv training loop a student writes in lesson 07, step for step against ``Trainer``.

The student's ``train(model, pairs, criterion, config)`` trains ``model`` for ``config.steps`` steps, where step t
(counting from 0) uses the batch of samples ``pairs[t·B] … pairs[t·B + B − 1]`` (B = ``config.batch_size``, stacked
as the ``Trainer``'s data loader does) and

    prediction = model(image ⊙ mask, mask)                       (mask: 1 = known, 0 = hole)
    θ ← Adam(θ, ∇ criterion(prediction, image, mask)["total"], lr_t)       one Adam for the whole run, betas (0.9, 0.999)
    lr_t = config.lr for t < t_f = config.resolved_finetune_step(), config.finetune_lr from t_f on;
    from t_f on the encoder's BatchNorm layers run in eval mode (running statistics used and kept), the decoder's
    keep normalising by the batch and updating theirs.

``check_training_loop`` runs it on a small PConv U-Net with a random-init VGG16 loss network (so that every loss
term is non-zero) in float64, from the same initial weights as a ``Trainer`` on the same config, and compares every
parameter and BatchNorm buffer with the ``Trainer``'s after every step. Float64 makes even mistakes that Adam almost
forgives visible: a loss multiplied by a constant changes an update only through Adam's ε (by about lr·ε/|g|).
On a mismatch it names the first step that differs and what usually causes a difference there.
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from pconv_lessons.data import InpaintingPairs
from pconv_lessons.losses import InpaintingLoss
from pconv_lessons.models import PConvUNet
from pconv_lessons.training import TrainConfig, Trainer

TrainFn = Callable[[PConvUNet, InpaintingPairs, InpaintingLoss, TrainConfig], object]

TOLERANCE = 1e-12  # float64; a loss scaled by 2 moves some weights by ~1e-9 after one step
CHECK_CONFIG = TrainConfig(
    model="pconv", data="sample", image_size=16, batch_size=2, steps=6, finetune_step=3,
    lr=1e-3, finetune_lr=2.5e-4,  # not the paper's rates: a loop that ignores config.lr / finetune_lr fails
    model_args={"layer_size": 3, "base_channels": 4}, loss_args={"vgg_weights": "random"},
    mask_kind="free_form", num_workers=0, sample_every=0, checkpoint_every=0, eval_every=0, log_every=1, seed=0,
)


class _Float64Pairs(torch.utils.data.Dataset):
    """``pairs[i]`` in float64 (the check's precision); ``len()`` as the wrapped stream's."""

    def __init__(self, pairs: InpaintingPairs) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self.pairs[index]
        return image.double(), mask.double()


def _state(model: nn.Module) -> dict[str, Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _differing(mine: dict[str, Tensor], reference: dict[str, Tensor]) -> list[str]:
    return [name for name, value in reference.items()
            if not torch.allclose(mine[name].double(), value.double(), rtol=0, atol=TOLERANCE)]


def _batchnorm_buffers(model: PConvUNet, part: str) -> list[str]:
    return [f"{part}.{name}.running_mean" for name, module in getattr(model, part).named_modules()
            if isinstance(module, nn.BatchNorm2d)]


def _reference_states(config: TrainConfig) -> tuple[Trainer, list[dict[str, Tensor]]]:
    """A ``Trainer`` in float64 and its model's state before and after each of ``config.steps`` steps."""
    with warnings.catch_warnings():  # the random-init VGG16 is the point here, not a mistake to warn about
        warnings.filterwarnings("ignore", message=r"VGG16Features\(weights=None\)")
        trainer = Trainer(config, progress=False, overwrite=True)
    initial = _state(trainer.model)
    trainer.model.double()
    trainer.objective.criterion.double()
    states = [initial]
    batches = trainer.batches()
    for _ in range(config.steps):
        image, mask = next(batches)
        trainer.train_step(image.double(), mask.double())
        states.append(_state(trainer.model))
    return trainer, states


def _student_states(train: TrainFn, trainer: Trainer, initial: dict[str, Tensor],
                    config: TrainConfig) -> tuple[PConvUNet, list[dict[str, Tensor]]]:
    """The student's model and its state before each forward pass and at the end."""
    model = PConvUNet(**config.model_args)
    model.load_state_dict(initial)
    model.double()
    criterion = InpaintingLoss(trainer.objective.criterion.extractor, weights=trainer.objective.criterion.weights)
    states: list[dict[str, Tensor]] = []
    hook = model.register_forward_pre_hook(lambda module, inputs: states.append(_state(module)))
    try:
        train(model, _Float64Pairs(trainer.pairs), criterion.double(), dataclasses.replace(config))
    finally:
        hook.remove()
    states.append(_state(model))
    return model, states


def _diagnosis(step: int, mine: list[dict[str, Tensor]], model: PConvUNet, config: TrainConfig) -> str:
    """What usually makes step ``step`` (1-based) the first to differ, judged from the student's own states."""
    finetune_step = config.resolved_finetune_step()
    if step == 1:
        return ("the first step already differs. The model sees image × mask and the mask (1 = known pixel), the batch "
                "of step 0 is pairs[0] … pairs[batch_size − 1], the loss is criterion(prediction, image, mask)"
                "['total'] as it is (not scaled, not re-weighted), and the optimiser is "
                "torch.optim.Adam(model.parameters(), lr=config.lr) with its default betas and no weight decay")
    if step <= finetune_step:
        matching = "step 1 matches" if step == 2 else f"steps 1 … {step - 1} match"
        return (f"{matching}, step {step} does not: gradients must not carry over between steps "
                f"(optimizer.zero_grad() before every backward), one Adam keeps its state for the whole run, and "
                f"step t uses the samples pairs[t·batch_size] … pairs[t·batch_size + batch_size − 1]")
    def changed(names: list[str]) -> list[str]:
        return [name for name in names if not torch.equal(mine[step - 1][name], mine[step][name])]

    if changed(_batchnorm_buffers(model, "encoder")):
        return (f"the fine-tune phase starts at step t = {finetune_step} (counting from 0), and in your step {step} "
                f"the encoder's batch norms still updated their running statistics: put them in eval mode "
                f"(after model.train(), which would undo it)")
    decoder = _batchnorm_buffers(model, "decoder")
    if len(changed(decoder)) < len(decoder):
        return (f"in your fine-tune step {step} the decoder's batch norms kept their running statistics: only the "
                f"encoder's are frozen, the decoder's keep normalising by the batch")
    return (f"the steps before the fine-tune phase match, step {step} does not: from step t = {finetune_step} "
            f"(counting from 0) every parameter group's lr must be config.finetune_lr, in the same Adam (its "
            f"moments carry over the switch), with the encoder's batch norms frozen")


def check_training_loop(train: TrainFn, config: TrainConfig = CHECK_CONFIG) -> None:
    """``AssertionError`` unless ``train`` leaves every weight and BatchNorm buffer where ``Trainer`` does, step by step."""
    with tempfile.TemporaryDirectory() as folder:
        config = dataclasses.replace(config, out=str(Path(folder) / "run"))
        trainer, reference = _reference_states(config)
        model, mine = _student_states(train, trainer, reference[0], config)
    if not _differing(mine[-1], reference[-1]) and len(mine) == config.steps + 1:
        return
    if not _differing(mine[-1], reference[0]):
        raise AssertionError("your loop did not change the weights: call loss.backward() and optimizer.step() in every "
                             "step")
    if len(mine) != config.steps + 1:
        raise AssertionError(f"your loop called the model {len(mine) - 1} times; config.steps = {config.steps} steps "
                             f"need one forward pass each")
    step = next(t for t in range(1, config.steps + 1) if _differing(mine[t], reference[t]))
    names = _differing(mine[step], reference[step])
    raise AssertionError(f"after step {step} your {', '.join(names[:3])}{' …' if len(names) > 3 else ''} differ from "
                         f"Trainer's: {_diagnosis(step, mine, model, config)}")
