"""Training the course's inpainting models: the trainer as a package, one concern per module.

- ``config``: ``TrainConfig`` (checked on creation) and what ``--resume`` keeps;
- ``objective``: the ``Objective`` interface, the shared loss network and argument checks;
- ``pconv``, ``gated``, ``lama``: the three objectives (PConv paper, DeepFill v2 with SN-PatchGAN, LaMa);
- ``registry``: ``--model NAME`` → builder and objective (``register_model``);
- ``checkpoints``: atomic checkpoints that resume exactly, safetensors exports, ``load_model``;
- ``files``: atomic, fsynced writes and appends;
- ``logs``: ``losses.csv`` appended while training (and its copy in ``last.pt``), optional TensorBoard;
- ``runfolder``: the guarded ``--out`` folder (lock, writability, no silent overwrite, stale temporary files);
- ``ema``: the moving average of the generator's weights;
- ``distributed``: DistributedDataParallel under ``torchrun``;
- ``trainer``: the loop (``Trainer``);
- ``cli``: ``python -m pconv_lessons.train`` / ``pconv-train``.
"""

from pconv_lessons.training.checkpoints import (
    CHECKPOINT_FORMAT, CHECKPOINT_NAME, EXPORT_FORMAT, atomic_save, atomic_write, export_model, find_checkpoints,
    load_checkpoint, load_model, resolve_device, rng_state, set_rng_state,
)
from pconv_lessons.training.cli import build_parser, main
from pconv_lessons.training.config import TrainConfig, config_from_dict
from pconv_lessons.training.distributed import Distributed
from pconv_lessons.training.ema import ModelEMA
from pconv_lessons.training.objective import NoFeatures, Objective, loss_network
from pconv_lessons.training.registry import MODELS, ModelEntry, model_entry, register_model
from pconv_lessons.training.trainer import Trainer, autocast_dtype, default_num_workers, make_mask_fn

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "EXPORT_FORMAT", "MODELS", "Distributed", "ModelEMA", "ModelEntry",
    "NoFeatures", "Objective", "TrainConfig", "Trainer", "atomic_save", "atomic_write", "autocast_dtype",
    "build_parser", "config_from_dict", "default_num_workers", "export_model", "find_checkpoints",
    "load_checkpoint", "load_model", "loss_network", "main", "make_mask_fn", "model_entry", "register_model",
    "resolve_device", "rng_state", "set_rng_state",
]
