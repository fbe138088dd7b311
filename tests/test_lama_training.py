"""``--model lama``: LaMa's generator trained by the course's Trainer with L1-known + perceptual (+ hinge GAN)."""

import pytest
import torch

from pconv_lessons.training.lama import LamaObjective
from pconv_lessons.models import LamaGenerator
from pconv_lessons.train import Trainer, TrainConfig, load_model, main

pytestmark = pytest.mark.filterwarnings("ignore:VGG16Features\\(weights=None\\)")

TINY = {"ngf": 4, "n_blocks": 1}


def box_mask(size, seed):
    mask = torch.ones(1, size, size)
    mask[:, size // 4 : size // 2 + size // 4, size // 4 : size // 2 + size // 4] = 0.0
    return mask


def config(tmp_path, **changes):
    values = dict(model="lama", image_size=32, batch_size=2, steps=2, out=str(tmp_path / "run"), model_args=TINY,
                  num_workers=0, sample_every=0, checkpoint_every=0, device="cpu")
    values.update(changes)
    return TrainConfig(**values)


def test_objective_terms_and_weights(tmp_path):
    objective = LamaObjective(config(tmp_path, loss_args={"adversarial": 0.0, "l1_hole": 2.0}), torch.device("cpu"))
    assert objective.phases == ("generator",) and objective.modules() == {}
    image = torch.rand(2, 3, 32, 32)
    mask = torch.stack([box_mask(32, 0), box_mask(32, 1)])

    class Fixed(torch.nn.Module):  # predicts the image, except 0.5 everywhere in the top-left 8×8 (known) corner
        def forward(self, seen, mask):
            out = image.clone()
            out[..., :8, :8] = 0.5
            return out

    terms = objective.loss("generator", Fixed(), image, mask, {})
    expected_known = (image[..., :8, :8] - 0.5).abs().sum() / image.numel()
    assert torch.allclose(terms["l1_known"], expected_known)
    assert terms["l1_hole"] == 0
    assert terms["perceptual"] > 0
    expected_total = 10 * terms["l1_known"] + 30 * terms["perceptual"]
    assert torch.allclose(terms["total"], expected_total)


def test_unknown_or_negative_loss_args_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown loss_args"):
        LamaObjective(config(tmp_path, loss_args={"style": 1.0}), torch.device("cpu"))
    with pytest.raises(ValueError, match=">= 0"):
        LamaObjective(config(tmp_path, loss_args={"l1_known": -1.0}), torch.device("cpu"))


def test_vgg_weights_words_mean_the_same_as_for_pconv(tmp_path):
    cpu = torch.device("cpu")
    random_init = LamaObjective(config(tmp_path, loss_args={"vgg_weights": "random", "adversarial": 0.0}), cpu)
    assert random_init.extractor is not None
    no_network = LamaObjective(config(tmp_path, loss_args={"vgg_weights": "none", "adversarial": 0.0}), cpu)
    assert no_network.extractor is None
    terms = no_network.loss("generator", LamaGenerator(**TINY), torch.rand(1, 3, 32, 32), box_mask(32, 0)[None], {})
    assert "perceptual" not in terms and torch.isfinite(terms["total"])


def test_trains_with_a_discriminator_and_the_cli_resumes(tmp_path, monkeypatch):
    cfg = config(tmp_path, steps=1, loss_args={"disc_channels": 4, "perceptual": 0.0})
    trainer = Trainer(cfg, progress=False, mask_fn=box_mask)
    assert trainer.objective.phases == ("discriminator", "generator")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    history = trainer.train()
    assert {"generator/l1_known", "generator/adversarial", "discriminator/hinge"} <= set(history[-1])
    assert "generator/perceptual" not in history[-1]
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())

    monkeypatch.setattr("pconv_lessons.training.trainer.MaskSource", lambda kind: box_mask)
    code = main(["--model", "lama", "--steps", "2", "--out", cfg.out, "--resume", "--no-progress", "--device", "cpu",
                 "--num-workers", "0"])
    assert code == 0
    model = load_model(tmp_path / "run" / "last.pt")
    assert isinstance(model, LamaGenerator) and model.ngf == 4
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 2


def test_lama_gan_terms_are_lamas_losses_on_its_discriminator(tmp_path):
    from pconv_lessons.lama_losses import feature_matching_loss, nonsaturating_d_loss, nonsaturating_g_loss, r1_penalty
    from pconv_lessons.models import NLayerDiscriminator

    cfg = config(tmp_path, loss_args={"gan": "lama", "disc_channels": 4, "perceptual": 0.0, "gp_coef": 0.5})
    objective = LamaObjective(cfg, torch.device("cpu"))
    assert isinstance(objective.discriminator, NLayerDiscriminator)
    objective.discriminator.eval()  # fixed BN statistics: the terms below recompute the same numbers
    torch.manual_seed(0)
    model = LamaGenerator(**TINY).eval()
    image, mask = torch.rand(2, 3, 32, 32), torch.stack([box_mask(32, 0), box_mask(32, 1)])
    cache = {}
    d_terms = objective.loss("discriminator", model, image, mask, cache)
    prediction = cache["prediction"].detach()
    real = image.clone().requires_grad_(True)
    real_scores, real_features = objective.discriminator(real)
    fake_scores, fake_features = objective.discriminator(prediction)
    expected_d = nonsaturating_d_loss(real_scores, fake_scores, mask) + 0.5 * r1_penalty(real_scores, real)
    assert torch.allclose(d_terms["total"], expected_d, atol=1e-6) and d_terms["r1"] > 0
    g_terms = objective.loss("generator", model, image, mask, cache)
    assert torch.allclose(g_terms["adversarial"], nonsaturating_g_loss(fake_scores), atol=1e-6)
    assert torch.allclose(g_terms["feature_matching"], feature_matching_loss(fake_features, real_features), atol=1e-6)
    expected_total = 10 * g_terms["l1_known"] + 10 * g_terms["adversarial"] + 100 * g_terms["feature_matching"]
    assert torch.allclose(g_terms["total"], expected_total)


def test_lama_gan_trains_one_step_and_an_unknown_gan_is_rejected(tmp_path):
    cfg = config(tmp_path, steps=1, loss_args={"gan": "lama", "disc_channels": 4, "perceptual": 0.0})
    history = Trainer(cfg, progress=False, mask_fn=box_mask).train()
    assert {"generator/feature_matching", "discriminator/r1", "discriminator/nonsaturating"} <= set(history[-1])
    with pytest.raises(ValueError, match="gan must be"):
        LamaObjective(config(tmp_path, loss_args={"gan": "wgan"}), torch.device("cpu"))


@pytest.mark.parametrize("gan", ["hinge", "lama"])
def test_discriminator_has_lamas_own_learning_rate_whatever_the_generators_lr(tmp_path, gan):
    cfg = config(tmp_path, steps=1, lr=1e-3, loss_args={"gan": gan, "disc_channels": 4, "perceptual": 0.0})
    trainer = Trainer(cfg, progress=False, mask_fn=box_mask)
    before = {name: value.detach().clone() for name, value in trainer.objective.discriminator.named_parameters()}
    image, mask = next(trainer.batches())
    trainer.train_step(image, mask)
    assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == 1e-4  # LaMa's default_optimizers.yaml
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == 1e-3
    moved = max(float((value - before[name]).abs().max())
                for name, value in trainer.objective.discriminator.named_parameters())
    assert 0.5e-4 < moved <= 1.001e-4, "Adam's first step moves a weight by at most the learning rate"
    with pytest.raises(ValueError, match="disc_lr"):
        LamaObjective(config(tmp_path, loss_args={"disc_lr": -1.0}), torch.device("cpu"))


def test_l2_terms_weigh_the_hole_and_the_cosine_schedule_decays_the_generators_rate(tmp_path):
    args = {"adversarial": 0.0, "perceptual": 0.0, "l1_known": 0.0, "l2_known": 1.0, "l2_hole": 6.0,
            "lr_schedule": "cosine"}
    objective = LamaObjective(config(tmp_path, loss_args=args, steps=100, lr=1e-3), torch.device("cpu"))
    image, mask = torch.rand(2, 3, 32, 32), torch.stack([box_mask(32, 0), box_mask(32, 1)])

    class Grey(torch.nn.Module):
        def forward(self, seen, mask):
            return torch.full_like(seen, 0.5)

    terms = objective.loss("generator", Grey(), image, mask, {})
    squared = (image - 0.5) ** 2
    assert torch.allclose(terms["l2_known"], (mask * squared).mean())
    assert torch.allclose(terms["l2_hole"], ((1 - mask) * squared).mean())
    assert torch.allclose(terms["total"], terms["l2_known"] + 6 * terms["l2_hole"])
    rates = [objective.learning_rate("generator", step) for step in (0, 50, 100)]
    assert rates == pytest.approx([1e-3, 5e-4, 0.0])
    constant = LamaObjective(config(tmp_path, loss_args={"adversarial": 0.0}, steps=100, lr=1e-3), torch.device("cpu"))
    assert constant.learning_rate("generator", 99) == 1e-3
    with pytest.raises(ValueError, match="lr_schedule"):
        LamaObjective(config(tmp_path, loss_args={"lr_schedule": "linear"}), torch.device("cpu"))
