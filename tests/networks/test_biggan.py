"""BigGAN networks: shapes and conditioning of the trainable GAN, the BigGAN-deep weight round
trip through a file (with and without config.json), truncated batch-norm statistics by hand,
and one clear error for weights that are not BigGAN-deep's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audiovis.errors import FileProblem
from audiovis.networks.biggan import (
    BigGANConfig,
    BigGANDeep,
    ConditionalGenerator,
    ProjectionDiscriminator,
    TruncatedBatchNorm,
    channel_multipliers,
    load_biggan,
    save_biggan,
    truncated_noise,
)

# a BigGAN-deep of the released design (odd blocks up-sample, widths halve) at 16 px
TINY = BigGANConfig(output_dim=16, z_dim=8, class_embed_dim=8, channel_width=4, num_classes=5,
                    layers=[(False, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
                    attention_layer_position=2, n_stats=5)  # fmt: skip


def random_biggan(seed: int = 0) -> BigGANDeep:
    torch.manual_seed(seed)
    model = BigGANDeep(TINY)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_means"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_vars"):
                buf.uniform_(0.5, 2.0)
        for name, param in model.named_parameters():
            if name.endswith("gamma"):
                param.fill_(0.3)  # attention on, so its weights matter
    return model.eval()


def test_channel_multipliers_follow_biggan() -> None:
    assert channel_multipliers(128) == [16, 16, 8, 4, 2, 1]
    assert channel_multipliers(64) == [16, 8, 4, 2, 1]
    with pytest.raises(ValueError, match="power of two"):
        channel_multipliers(100)


@pytest.mark.parametrize("size,attention", [(32, 16), (16, None)])
def test_generator_and_discriminator_shapes(size: int, attention: int | None) -> None:
    torch.manual_seed(0)
    g = ConditionalGenerator(3, size, channels=4, z_dim=8, embed_dim=8, attention=attention)
    d = ProjectionDiscriminator(3, size, channels=4, attention=attention)
    z, ids = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    x = g(z, ids)
    assert x.shape == (4, 3, size, size) and x.abs().max() <= 1
    assert d(x, ids).shape == (4,)
    # a mixture of two classes is a valid class vector; one-hot equals the id
    g.eval()
    one_hot = torch.eye(3)[ids]
    assert torch.allclose(g(z, ids), g(z, one_hot))
    mixed = g(z, 0.5 * torch.eye(3)[[0, 0, 0, 0]] + 0.5 * torch.eye(3)[[1, 1, 1, 1]])
    assert torch.isfinite(mixed).all()


def test_class_conditions_both_networks() -> None:
    torch.manual_seed(0)
    g = ConditionalGenerator(3, 32, channels=4, z_dim=8, embed_dim=8, attention=None).eval()
    d = ProjectionDiscriminator(3, 32, channels=4, attention=None)
    z = torch.randn(1, 8).repeat(2, 1)
    x = g(z, torch.tensor([0, 1]))
    assert (x[0] - x[1]).abs().mean() > 1e-3
    same = x[:1].repeat(2, 1, 1, 1)
    scores = d(same, torch.tensor([0, 2]))
    assert abs(float(scores[0] - scores[1])) > 1e-4


def test_fresh_networks_are_finite_in_eval_mode() -> None:
    # spectral norm's stored vectors are settled at construction: no overflow before training
    torch.manual_seed(3)
    g = ConditionalGenerator(4, 32, channels=8, attention=16).eval()
    with torch.no_grad():
        x = g(torch.randn(2, 128), torch.tensor([0, 3]))
    assert torch.isfinite(x).all() and x.std() > 0.05


def test_truncated_noise_bounds() -> None:
    z = truncated_noise(500, 16, 0.3, np.random.default_rng(0))
    assert z.shape == (500, 16) and np.abs(z).max() <= 0.6 + 1e-6
    assert 0.2 < z.std() / 0.3 < 1.0  # a truncated normal, not a clipped constant


def test_truncated_batch_norm_interpolates_statistics() -> None:
    bn = TruncatedBatchNorm(1, None, n_stats=3, eps=0.0)
    bn.running_means.copy_(torch.tensor([[0.0], [1.0], [3.0]]))
    bn.running_vars.copy_(torch.tensor([[1.0], [4.0], [16.0]]))
    mean, var = bn.statistics(0.75)  # position 1.5: halfway between entries 1 and 2
    assert mean.item() == pytest.approx(2.0) and var.item() == pytest.approx(10.0)
    x = torch.full((1, 1, 1, 1), 5.0)
    assert bn(x, 1.0).item() == pytest.approx((5 - 3) / 4)


def test_biggan_round_trip_through_a_file(tmp_path: Path) -> None:
    model = random_biggan()
    folder = save_biggan(model, tmp_path / "biggan")
    assert json.loads((folder / "config.json").read_text())["output_dim"] == 16
    z = torch.from_numpy(truncated_noise(3, 8, 0.4, np.random.default_rng(1)))
    y = torch.tensor([0, 2, 4])
    with torch.no_grad():
        expected = model(z, y, 0.4)
        loaded = load_biggan(folder)
        assert torch.equal(loaded(z, y, 0.4), expected)
        # the bare .bin without its config: the layout is read off the weights' shapes
        bare = tmp_path / "alone.bin"
        bare.write_bytes((folder / "pytorch_model.bin").read_bytes())
        inferred = load_biggan(bare)
        assert inferred.config.layers == TINY.layers
        assert inferred.config.attention_layer_position == 2
        assert torch.equal(inferred(z, y, 0.4), expected)
        # truncation picks other norm statistics: another image
        assert not torch.allclose(loaded(z, y, 1.0), expected)
    assert expected.shape == (3, 3, 16, 16)
    keys = set(loaded.state_dict())
    # the pytorch-pretrained-biggan names
    expected_keys = {
        "embeddings.weight",
        "generator.gen_z.weight_orig",
        "generator.gen_z.weight_u",
        "generator.layers.0.bn_0.running_means",
        "generator.layers.2.snconv1x1_theta.weight_orig",
        "generator.bn.running_vars",
        "generator.conv_to_rgb.bias",
    }
    assert expected_keys <= keys


def test_weights_of_another_model_fail_naming_the_file(tmp_path: Path) -> None:
    other = tmp_path / "other.bin"
    torch.save(ConditionalGenerator(3, 32, channels=4).state_dict(), other)
    with pytest.raises(FileProblem, match="other.bin: is not a BigGAN-deep generator"):
        load_biggan(other)
    text = tmp_path / "notes.bin"
    text.write_text("not weights")
    with pytest.raises(FileProblem, match="notes.bin: is not a PyTorch weights file"):
        load_biggan(text)
    with pytest.raises(FileProblem, match="no such file"):
        load_biggan(tmp_path / "missing")
    # a config.json that disagrees with the weights
    folder = save_biggan(random_biggan(), tmp_path / "bad")
    config = json.loads((folder / "config.json").read_text())
    config["num_classes"] = 7
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileProblem, match="pytorch_model.bin: does not fit BigGAN-deep"):
        load_biggan(folder)
