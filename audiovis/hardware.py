"""What the machine can do fast: bfloat16 on the CPU.

bf16 autocast is a win on GPUs and on CPUs with bfloat16 units (Intel AMX / AVX-512 BF16: on
the zoo's benchmarks APVG generates 32 frames/s under bf16 against 17 in fp32). On a CPU
without them (AVX2 only, e.g. many AMD EPYC machines) oneDNN emulates bf16 convolutions and the
same model runs about 100 times slower than in fp32, so a config's ``precision: bf16-mixed``
is turned into ``32-true`` there (see :func:`cpu_precision`).
"""

import os

import torch

CPU_BF16_ENV = "AUDIOVIS_CPU_BF16"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN's own test: AVX-512 BF16
    or AMX). ``AUDIOVIS_CPU_BF16=1`` / ``=0`` overrides the answer."""
    forced = os.environ.get(CPU_BF16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def runs_on_cpu(accelerator: object) -> bool:
    """Whether a Trainer with this ``accelerator`` setting trains on the CPU."""
    name = str(accelerator or "auto").lower()
    if name == "auto":
        return not (torch.cuda.is_available() or torch.backends.mps.is_available())
    return name == "cpu"


def cpu_precision(precision: object, accelerator: object) -> str | None:
    """The precision to train with instead of ``precision`` on this machine, or None to keep
    it: a bf16 precision on a CPU without bfloat16 units becomes ``32-true``."""
    name = str(precision)
    if name.startswith("bf16") and runs_on_cpu(accelerator) and not cpu_has_fast_bf16():
        return "32-true"
    return None
