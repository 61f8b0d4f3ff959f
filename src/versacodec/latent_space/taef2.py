"""TAEF2: the Tiny AutoEncoder (madebyollin/taesd @ 5cccb12, MIT) for the FLUX.2 latent space
(f = 8, 32 channels), the latent space of versacodec's models from v5 on.

Two ways in, neither downloads anything:
- a bundle component in the project's own format (`config.json` + `model.safetensors`, with the
  MIT licence beside it), which `from_pretrained(folder)` reads: how a shipped model carries it;
- the upstream files `taef2_encoder.pth` and `taef2_decoder.pth` (fp16 state dicts) in the model
  directory (`versacodec.paths.models_dir`), read by `from_files()`; `save_pretrained` turns them
  into a component (`scripts/convert_taef2.py`).

Architecture: the classic TAESD encoder/decoder (64-channel blocks `relu(conv(x) + x)`, three
stride-2 stages, a decoder starting with a soft clamp) in its `flux_2` variant, where the blocks
at 1/8 resolution (encoder 11-13, decoder 3-5) first add a "pool" branch per pixel,
`x + conv1x1(relu(GroupNorm(4)(conv1x1(x))))`. The GroupNorm statistics span the whole image,
which is how the branch pools global context; so unlike versacodec's own autoencoder a tile does
not decode exactly like the same region of the whole image.

That forward was chosen empirically, as the weights come without code: among the plausible
variants (the branch fed the spatial mean or the pixels, added before or after the fuse ReLU or
before the block's convolutions, gating, ReLU/SiLU/GELU at index 2), this one reconstructs
Kodak best: kodim01-03 whole, 30.6 dB mean PSNR (27.2, 31.4, 33.2), against 29.6 dB for the branch
added before the fuse ReLU and 26.8 dB for the branch fed the spatial mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import torch
import torch.nn.functional as F
from torch import nn

from versacodec.errors import InputError, ModelError
from versacodec.fileio import CONFIG_NAME
from versacodec.modeling import PretrainedModule, freeze
from versacodec.paths import models_dir, third_party_model

ENCODER_FILE = "latent/taef2_encoder.pth"
DECODER_FILE = "latent/taef2_decoder.pth"
LATENT_CHANNELS = 32
WIDTH = 64
FACTOR = 8  # image pixels per latent pixel, each way

# Per-channel mean and std of raw TAEF2 latents, measured by `encode_raw` on 24 images of
# ../shared/data/train (the first 6 files of each of bsd100, imagenet-odd, sun-hays80 and
# urban100, each centre-cropped to at most 512x512 with sides divisible by 8; 79k latent
# positions in all), never on the Kodak evaluation set.
RAW_LATENT_MEAN = (
    -0.0228, 0.0709, 0.0345, 0.0646, 0.0021, 0.1512, 0.0994, -0.1996,
    0.1159, -0.0448, -0.0239, -0.1579, -0.0709, -0.0091, 0.1203, 0.0629,
    0.0671, 0.1221, -0.0330, -0.1636, -0.0859, 0.0160, -0.1029, -0.0108,
    0.0209, 0.1101, 0.1602, 0.1669, 0.0913, 0.0034, 0.0246, -0.0135,
)
RAW_LATENT_STD = (
    0.7388, 0.9939, 0.9521, 0.9515, 0.6939, 0.9597, 0.9571, 0.7522,
    0.9536, 0.5981, 0.6318, 0.9576, 0.7249, 0.6418, 0.9324, 0.9448,
    0.7429, 0.6807, 0.7103, 1.0229, 0.7873, 0.6206, 0.7368, 0.6467,
    0.9385, 0.7145, 0.9477, 0.8174, 0.7973, 0.9632, 0.8403, 1.0352,
)


def _conv(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class _SoftClamp(nn.Module):
    """tanh(x / 3) * 3: keeps the decoder's input within the range the decoder was trained on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class TinyBlock(nn.Module):
    """relu(conv(x) + x), optionally after adding the flux_2 global-context branch `pool`."""

    def __init__(self, channels: int = WIDTH, global_context: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(channels, channels), nn.ReLU(), _conv(channels, channels), nn.ReLU(),
                                  _conv(channels, channels))
        # Attribute and layer indices match the state-dict keys pool.0, pool.1 and pool.3.
        self.pool = nn.Sequential(
            nn.Conv2d(channels, channels * 4, 1, bias=False),
            nn.GroupNorm(4, channels * 4),
            nn.ReLU(),
            nn.Conv2d(channels * 4, channels, 1, bias=False),
        ) if global_context else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return F.relu(self.conv(x) + x)


def _blocks(count: int, global_context: bool = False) -> list[nn.Module]:
    return [TinyBlock(global_context=global_context) for _ in range(count)]


class Encoder(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(
            _conv(3, WIDTH), *_blocks(1),
            _conv(WIDTH, WIDTH, stride=2, bias=False), *_blocks(3),
            _conv(WIDTH, WIDTH, stride=2, bias=False), *_blocks(3),
            _conv(WIDTH, WIDTH, stride=2, bias=False), *_blocks(3, global_context=True),
            _conv(WIDTH, LATENT_CHANNELS),
        )


class Decoder(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(
            _SoftClamp(), _conv(LATENT_CHANNELS, WIDTH), nn.ReLU(),
            *_blocks(3, global_context=True), nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False),
            *_blocks(3), nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False),
            *_blocks(3), nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False),
            *_blocks(1), _conv(WIDTH, 3),
        )


def _load_strict(module: nn.Module, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises several types for damaged or foreign files
        raise ModelError(f"{path}: unreadable TAEF2 weights ({exc})") from exc
    if not isinstance(state, dict):
        raise ModelError(f"{path} holds a {type(state).__name__}, not a TAEF2 state dict")
    try:
        # strict=False so that missing/unexpected keys are reported below, all in one message.
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ModelError(f"{path} does not match the TAEF2 {type(module).__name__}: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(f"{path} does not match the TAEF2 {type(module).__name__}: "
                         f"missing {result.missing_keys}, unexpected {result.unexpected_keys}")


@dataclass(frozen=True)
class TAEF2Config:
    """The architecture is fixed (TAESD's flux_2 variant); the config records where the weights came from."""

    source: str = "madebyollin/taesd@5cccb12 taef2_encoder.pth + taef2_decoder.pth (MIT)"


class TAEF2(PretrainedModule):
    """Image in [0, 1] <-> FLUX.2-space latent normalised by the training-set statistics above.

    Weights are stored in fp16 and loaded into fp32 parameters, since CPU fp16 convolutions are slow.
    """

    config_class = TAEF2Config
    name = "taef2"

    def __init__(self, config: TAEF2Config | None = None) -> None:
        super().__init__(config or TAEF2Config())
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.register_buffer("latent_mean", torch.tensor(RAW_LATENT_MEAN).view(1, -1, 1, 1))
        self.register_buffer("latent_std", torch.tensor(RAW_LATENT_STD).view(1, -1, 1, 1))

    @classmethod
    def from_files(cls, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None) -> Self:
        """Load the two upstream weight files, by default from the model directory; ModelError when absent."""
        paths = []
        for given, relative in ((encoder_path, ENCODER_FILE), (decoder_path, DECODER_FILE)):
            path = Path(given) if given is not None else third_party_model(relative)
            if path is None or not path.is_file():
                where = path if path is not None else _default_location(relative)
                raise ModelError(f"TAEF2 weights not found: {where} (set VERSACODEC_MODELS to the folder "
                                 f"holding {relative})")
            paths.append(path)
        model = cls()
        _load_strict(model.encoder, paths[0])
        _load_strict(model.decoder, paths[1])
        return freeze(model)

    @property
    def factor(self) -> int:
        return FACTOR

    @property
    def channels(self) -> int:
        return LATENT_CHANNELS

    @property
    def peak_channels_per_pixel(self) -> float:
        return WIDTH  # its first and last stages run at full resolution

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None) -> Self:
        """From a component folder in the project's format (a bundle's `autoencoder/`), or from a
        folder holding the two upstream files; by default the upstream files of the model directory."""
        if folder is None:
            return cls.from_files()
        folder = Path(folder)
        if (folder / CONFIG_NAME).is_file():
            return freeze(super().from_pretrained(folder))
        return cls.from_files(folder / Path(ENCODER_FILE).name, folder / Path(DECODER_FILE).name)

    def encode_raw(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % self.factor or width % self.factor:
            raise InputError(f"TAEF2 needs sides divisible by {self.factor}, got {width}x{height}")
        return self.encoder(images)

    def decode_raw(self, raw_latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(raw_latents)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return (self.encode_raw(images) - self.latent_mean) / self.latent_std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decode_latents_unclamped(latents).clamp(0, 1)

    def decode_latents_unclamped(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoder's pixels before clamping: a loss through it keeps gradients everywhere."""
        return self.decode_raw(latents * self.latent_std + self.latent_mean)


def _default_location(relative: str) -> str:
    root = models_dir()
    if root is None:
        return f"{relative} (no model directory: $VERSACODEC_MODELS unset and no ../shared/models)"
    return str(root / relative)
