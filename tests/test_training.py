"""Training plumbing: the GAN base, the non-finite loss guard, DDP, bf16-mixed, exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import CONF, fit_tiny, run_cli
from tests.conftest import assert_ok as _ok

TINY = str(CONF / "tiny.yaml")
TINY_GAN = str(CONF / "tiny_gan.yaml")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_gan_steps_each_network_with_its_own_optimizer(fixture_root: Path, tmp_path: Path) -> None:
    _ok(
        run_cli(
            "fit",
            "--config",
            TINY_GAN,
            "--data.root",
            str(fixture_root),
            "--trainer.default_root_dir",
            str(tmp_path),
        )
    )
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    opt_g, opt_d = ckpt["optimizer_states"]
    d_steps = {int(s["step"]) for s in opt_d["state"].values()}
    g_steps = {int(s["step"]) for s in opt_g["state"].values()}
    # 11 batches per epoch: a critic step on each, a generator step on every second one
    assert d_steps == {11} and g_steps == {5}
    assert ckpt["global_step"] == 16  # Lightning counts optimizer steps


def test_nonfinite_loss_stops_with_clear_message(fixture_root: Path, tmp_path: Path) -> None:
    result = run_cli(
        "fit",
        "--config",
        TINY_GAN,
        "--data.root",
        str(fixture_root),
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.max_epochs",
        "3",
        "--model.init_args.nan_after",
        "20",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert "loss became nan" in error and "last good checkpoint" in error
    # the last checkpoint (end of epoch 1) is intact and finite
    weights = _weights(tmp_path / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def _fit_bf16(fixture_root: Path, tmp_path: Path, cpu_bf16: str) -> str:
    result = fit_tiny(
        fixture_root,
        tmp_path,
        "--trainer.max_epochs=1",
        "--trainer.precision=bf16-mixed",
        env={"AUDIOVIS_CPU_BF16": cpu_bf16},
    )
    _ok(result)
    weights = _weights(tmp_path / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    return result.stdout + result.stderr


def test_bf16_mixed_trains(fixture_root: Path, tmp_path: Path) -> None:
    # forced, as on a CPU with bfloat16 units (AMX / AVX-512 BF16) or a GPU
    out = _fit_bf16(fixture_root, tmp_path, cpu_bf16="1")
    assert "bfloat16 Automatic Mixed Precision" in out and "this CPU has no bfloat16" not in out


def test_bf16_on_a_cpu_without_bf16_units_trains_in_fp32(
    fixture_root: Path, tmp_path: Path
) -> None:
    # where bf16 convolutions are emulated (about 100x slower) the CLI says so and uses fp32
    out = _fit_bf16(fixture_root, tmp_path, cpu_bf16="0")
    assert "this CPU has no bfloat16 units" in out and "training in 32-true" in out
    assert "bfloat16 Automatic Mixed Precision" not in out


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(fixture_root: Path, tmp_path: Path) -> None:
    result = fit_tiny(
        fixture_root,
        tmp_path,
        "--trainer.max_epochs",
        "1",
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.num_nodes",
        "1",
    )
    _ok(result)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    # 44 windows split over 2 ranks of batch 4: 6 steps per epoch (11 on one process)
    assert ckpt["global_step"] == 6


@pytest.mark.parametrize(
    "kill_at",
    [12, pytest.param(23, marks=pytest.mark.slow)],  # the boundary case runs in `make test-all`
    ids=["mid-epoch", "after-epoch-boundary"],
)
def test_sigkill_resume_matches_uninterrupted_run(
    fixture_root: Path, tmp_path: Path, kill_at: int
) -> None:
    common = (
        "fit",
        "--config",
        TINY,
        "--data.root",
        str(fixture_root),
        "--trainer.max_epochs",
        "3",
        "--checkpoint.every_n_train_steps",
        "1",
    )
    full, broken = tmp_path / "full", tmp_path / "broken"
    _ok(run_cli(*common, "--trainer.default_root_dir", str(full)))

    killed = run_cli(
        *common,
        "--trainer.default_root_dir",
        str(broken),
        "--trainer.callbacks+=tests.helpers.tiny.KillAtStep",
        f"--trainer.callbacks.step={kill_at}",
    )
    assert killed.returncode == -9  # SIGKILL
    last = torch.load(broken / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == kill_at - 1  # killed before that step's checkpoint

    _ok(run_cli(*common, "--trainer.default_root_dir", str(broken), "--ckpt_path", "last"))
    assert torch.load(broken / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 33
    a = _weights(full / "checkpoints" / "last.ckpt")
    b = _weights(broken / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
