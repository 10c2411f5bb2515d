"""Training plumbing shared by the zoo: declared streams, a non-finite loss guard,
step-derived randomness for exact resumes, and a GAN base with manual optimization."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from audiovis.errors import AudiovisError, FileProblem


class NonFiniteLossError(AudiovisError):
    """A loss became NaN or infinite; training stops before the bad update is applied."""


def step_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (base seed, rank, epoch, batch) by a hash."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class AudioVisualModule(pl.LightningModule):
    """Base of every model in the zoo.

    Subclasses set ``streams``, the batch keys they read; the DataModule checks the dataset has
    them at setup. Before each training batch the global torch RNG is re-seeded from the
    run's seed, the rank, the epoch and the batch index, so noise and dropout depend only on
    the position in training: a run resumed from a checkpoint continues bit for bit.
    """

    streams: ClassVar[tuple[str, ...]] = ()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        base = int(os.environ.get("PL_GLOBAL_SEED", 0))
        torch.manual_seed(step_seed(base, self.global_rank, self.current_epoch, batch_idx))

    def on_before_backward(self, loss: Tensor) -> None:
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(self._nonfinite_message(loss))

    def _nonfinite_message(self, loss: Tensor) -> str:
        last = ""
        if self._trainer is not None and self.trainer.checkpoint_callback is not None:
            path = getattr(self.trainer.checkpoint_callback, "last_model_path", "") or getattr(
                self.trainer.checkpoint_callback, "best_model_path", ""
            )
            last = f"; last good checkpoint: {path}" if path else "; no checkpoint was saved yet"
        return (
            f"{type(self).__name__}: loss became {loss.detach().float().sum().item()} at "
            f"epoch {self.current_epoch}, step {self.global_step}; training stopped before "
            f"the update{last}. Lower the learning rate or enable gradient clipping"
        )


class GANModule(AudioVisualModule):
    """A GAN trained with manual optimization, as in Lightning's GAN example.

    Each training batch takes one discriminator (critic) step; every ``n_critic``-th batch also
    takes a generator step. Each step toggles its optimizer, so only its network's parameters
    get gradients. Subclasses set ``self.generator`` and ``self.discriminator`` and implement
    :meth:`discriminator_loss` and :meth:`generator_loss`, which return the loss to minimise
    and a dict of values to log.

    Args:
        generator_optimizer: optimizer factory for the generator.
        discriminator_optimizer: optimizer factory for the discriminator.
        generator_scheduler: optional LR scheduler factory, stepped by hand once per epoch.
        discriminator_scheduler: likewise for the discriminator.
        n_critic: discriminator steps per generator step.
        gradient_clip: clip each network's gradient norm to this (``None``: no clipping).
    """

    generator: nn.Module
    discriminator: nn.Module

    def __init__(
        self,
        generator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        generator_scheduler: LRSchedulerCallable | None = None,
        discriminator_scheduler: LRSchedulerCallable | None = None,
        n_critic: int = 1,
        gradient_clip: float | None = None,
    ) -> None:
        super().__init__()
        if n_critic < 1:
            raise AudiovisError(f"n_critic must be >= 1, got {n_critic}")
        self.automatic_optimization = False
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.generator_scheduler = generator_scheduler
        self.discriminator_scheduler = discriminator_scheduler
        self.n_critic = n_critic
        self.gradient_clip = gradient_clip

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def configure_optimizers(self) -> Any:
        opt_g = self.generator_optimizer(self.generator.parameters())
        opt_d = self.discriminator_optimizer(self.discriminator.parameters())
        scheds = [
            factory(opt)
            for factory, opt in (
                (self.generator_scheduler, opt_g),
                (self.discriminator_scheduler, opt_d),
            )
            if factory is not None
        ]
        return [opt_g, opt_d], scheds

    def _optimize(self, optimizer: Any, loss: Tensor) -> None:
        with self.toggled_optimizer(optimizer):
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.gradient_clip is not None:
                self.clip_gradients(
                    optimizer, gradient_clip_val=self.gradient_clip, gradient_clip_algorithm="norm"
                )
            optimizer.step()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()  # type: ignore[misc,attr-defined]
        with self.toggled_optimizer(opt_d):
            d_loss, d_logs = self.discriminator_loss(batch)
        self._optimize(opt_d, d_loss)
        logs = {"train/d_loss": d_loss.detach(), **d_logs}
        if (batch_idx + 1) % self.n_critic == 0:
            with self.toggled_optimizer(opt_g):
                g_loss, g_logs = self.generator_loss(batch)
            self._optimize(opt_g, g_loss)
            logs.update({"train/g_loss": g_loss.detach(), **g_logs})
        self.log_dict(logs, prog_bar=True, batch_size=_batch_size(batch))

    def on_train_epoch_end(self) -> None:
        for scheduler in self._schedulers():
            scheduler.step()

    def _schedulers(self) -> Iterator[Any]:
        scheds = self.lr_schedulers()
        if scheds is None:
            return iter(())
        return iter(scheds if isinstance(scheds, list) else [scheds])


def _batch_size(batch: dict[str, Any]) -> int:
    for value in batch.values():
        if isinstance(value, Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 1


def read_checkpoint(path: str | os.PathLike[str], missing: str = "no such checkpoint"
                    ) -> dict[str, Any]:  # fmt: skip
    """A checkpoint's contents, loaded with ``weights_only=True`` onto the CPU.

    Raises:
        FileProblem: the file is missing (``missing`` says what was expected) or unreadable.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileProblem(path, missing)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors all mean "not a checkpoint"
        raise FileProblem(path, f"not a readable checkpoint ({type(err).__name__})") from None
    return ckpt if isinstance(ckpt, dict) else {}
