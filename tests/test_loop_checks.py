"""Lesson 07's loop check: a loop that trains like Trainer passes, and each planted mistake fails at its step."""

import pytest
import torch
from torch import nn

from pconv_lessons.course.loop_checks import check_training_loop


def train_pconv(model, pairs, criterion, config, *, zero_grad=True, scale=1.0, finetune_lr=None, freeze="encoder",
                optimizer_class=torch.optim.Adam, invert_mask=False, switch_after=False, new_optimizer=False,
                batch_offset=0, steps=None):
    """Lesson 07's training loop; the keywords plant one mistake each."""
    optimizer = optimizer_class(model.parameters(), lr=config.lr)
    finetune_step = config.resolved_finetune_step()
    for step in range(config.steps if steps is None else steps):
        first = (step + batch_offset) * config.batch_size
        samples = [pairs[first + i] for i in range(config.batch_size)]
        image, mask = (torch.stack(parts) for parts in zip(*samples))
        finetuning = step > finetune_step if switch_after else step >= finetune_step
        if finetuning and new_optimizer and step == finetune_step:
            optimizer = optimizer_class(model.parameters(), lr=config.finetune_lr)
        for group in optimizer.param_groups:
            group["lr"] = (config.finetune_lr if finetune_lr is None else finetune_lr) if finetuning else config.lr
        model.train()
        if finetuning:
            parts = {"encoder": [model.encoder], "both": [model.encoder, model.decoder], "decoder": [model.decoder],
                     "none": []}[freeze]
            for part in parts:
                for module in part.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        module.eval()
        if invert_mask:
            mask = 1 - mask
        prediction = model(image * mask, mask)
        loss = scale * criterion(prediction, image, mask)["total"]
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_the_lessons_loop_passes():
    check_training_loop(train_pconv)


def test_the_packages_own_switch_passes_too():
    def with_freeze_method(model, pairs, criterion, config):
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        for step in range(config.steps):
            image, mask = (torch.stack(parts) for parts in zip(*(pairs[step * config.batch_size + i]
                                                                   for i in range(config.batch_size))))
            finetuning = step >= config.resolved_finetune_step()
            model.freeze_encoder_batchnorm(finetuning).train()
            optimizer.param_groups[0]["lr"] = config.finetune_lr if finetuning else config.lr
            optimizer.zero_grad()
            criterion(model(image * mask, mask), image, mask)["total"].backward()
            optimizer.step()

    check_training_loop(with_freeze_method)


PLANTED = {
    "no zero_grad": (dict(zero_grad=False), "step 2 .*zero_grad"),
    "loss × 2": (dict(scale=2.0), "step 1 .*not scaled"),
    "loss / batch size": (dict(scale=0.5), "step 1 .*not scaled"),
    "lr unchanged after the switch": (dict(finetune_lr=1e-3), "step 4 .*finetune_lr"),
    "encoder BN not frozen": (dict(freeze="none"), "step 4 .*encoder's batch norms still"),
    "decoder BN frozen too": (dict(freeze="both"), "step 4 .*decoder's batch norms kept"),
    "decoder BN frozen instead": (dict(freeze="decoder"), "step 4 .*encoder's batch norms still"),
    "SGD": (dict(optimizer_class=torch.optim.SGD), "step 1 .*Adam"),
    "AdamW": (dict(optimizer_class=torch.optim.AdamW), "step 1 .*Adam"),
    "inverted mask": (dict(invert_mask=True), "step 1 .*1 = known"),
    "switch one step late": (dict(switch_after=True), "step 4 "),
    "a new Adam at the switch": (dict(new_optimizer=True), "step 4 .*moments carry over"),
    "batches shifted by one": (dict(batch_offset=1), "step 1 .*pairs\\[0\\]"),
    "one step short": (dict(steps=5), "called the model 5 times"),
}


@pytest.mark.parametrize("name", list(PLANTED))
def test_each_planted_mistake_fails(name):
    keywords, message = PLANTED[name]
    with pytest.raises(AssertionError, match=message):
        check_training_loop(lambda *args: train_pconv(*args, **keywords))


def test_a_loop_that_never_steps_fails():
    with pytest.raises(AssertionError, match="did not change the weights"):
        check_training_loop(lambda model, pairs, criterion, config: None)
