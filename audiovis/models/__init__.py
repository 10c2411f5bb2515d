"""The zoo: every LightningModule of audiovis. ``__all__`` lists them; tests iterate over it."""

from audiovis.models.apvg import APVG
from audiovis.models.base import AudioVisualModule, GANModule

__all__: list[str] = ["APVG"]

# the bases, importable but not models of the zoo
_bases = (AudioVisualModule, GANModule)
