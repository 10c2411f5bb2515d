"""The zoo: every LightningModule of audiovis. ``__all__`` lists them; tests iterate over it."""

from audiovis.models.base import AudioVisualModule, GANModule

__all__: list[str] = []

# the bases, importable but not models of the zoo
_bases = (AudioVisualModule, GANModule)
