"""The zoo: every LightningModule of audiovis. ``__all__`` lists them; tests iterate over it."""

from audiovis.models.apvg import APVG
from audiovis.models.audeo import Roll2Midi, Video2Roll
from audiovis.models.base import AudioVisualModule, GANModule
from audiovis.models.dance import (
    AudioToDanceWGAN,
    DanceSequenceWGAN,
    DanceStyleClassifier,
    PoseWGAN,
)
from audiovis.models.ganterpretation import ClassConditionalGAN
from audiovis.models.guitarist import AudioToMaskGAN, MaskToImageGAN, PoseToImageGAN

__all__: list[str] = [
    "APVG",
    "AudioToDanceWGAN",
    "AudioToMaskGAN",
    "ClassConditionalGAN",
    "DanceSequenceWGAN",
    "DanceStyleClassifier",
    "MaskToImageGAN",
    "PoseToImageGAN",
    "PoseWGAN",
    "Roll2Midi",
    "Video2Roll",
]

# the bases, importable but not models of the zoo
_bases = (AudioVisualModule, GANModule)
