"""The generative decoder's settings (`generative.json`), readable without loading its networks.

Encoding needs some of them (the palette layers' start timesteps go into layered streams) and
decoding chooses its diffusion start from them, so they load without diffusers or weights.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from versacodec.errors import ModelError
from versacodec.generative.schedule import TRAIN_TIMESTEPS
from versacodec.modeling import config_from_dict

CONFIG_NAME = "generative.json"


@dataclass(frozen=True)
class GenerativeConfig:
    default_steps: int = 1
    default_cfg: float = 5.0
    start_strength: float = 0.7  # multi-step sampling starts from ẑ noised to this fraction of T
    one_step_timestep: int = 600  # one-step mode: a single x0 prediction from ẑ noised to this t
    # One-step start by the stream's quality, overriding one_step_timestep: (lowest quality, t)
    # pairs in rising quality, a stream taking the last pair its quality reaches. Finer streams
    # need less of the prior; t = 0 uses ẑ as it is. benchmarks/calibrate_generative.py measures it.
    one_step_timesteps_by_quality: tuple[tuple[int, int], ...] = ()
    tile_size: int = 96  # latent tiles (768 px) for large images, blended over tile_overlap
    tile_overlap: int = 16
    # Start timestep of each palette layer's prefix by palette level (1: two clusters; deeper levels
    # use the last entry; empty: one_step_timestep); 0 decodes the prefix without diffusion.
    # benchmarks/calibrate_generative.py measures it.
    layer_start_timesteps: tuple[int, ...] = ()
    # Start timestep for streams whose background was extracted away: the dropped regions hold
    # only predicted means and need more of the prior than a full stream of the same quality.
    # None: start them like a full stream.
    partial_stream_timestep: int | None = None
    # Whether a partial stream's sent regions keep their decoded latent (the prior then composes
    # only the dropped background) or are generated with it.
    partial_stream_keeps_regions: bool = True

    def __post_init__(self) -> None:
        if not all(0 <= start < TRAIN_TIMESTEPS for start in self.layer_start_timesteps):
            raise ModelError(f"layer_start_timesteps must lie in [0, {TRAIN_TIMESTEPS}), "
                             f"not {self.layer_start_timesteps}")
        if self.partial_stream_timestep is not None and not 0 <= self.partial_stream_timestep < TRAIN_TIMESTEPS:
            raise ModelError(f"partial_stream_timestep must lie in [0, {TRAIN_TIMESTEPS}), "
                             f"not {self.partial_stream_timestep}")
        table = tuple(tuple(pair) for pair in self.one_step_timesteps_by_quality)
        qualities = [pair[0] for pair in table]
        if (any(len(pair) != 2 or not 0 <= pair[1] < TRAIN_TIMESTEPS for pair in table)
                or qualities != sorted(set(qualities))):
            raise ModelError("one_step_timesteps_by_quality must be (quality, timestep) pairs in rising quality "
                             f"with timesteps in [0, {TRAIN_TIMESTEPS}), not {self.one_step_timesteps_by_quality}")
        object.__setattr__(self, "one_step_timesteps_by_quality", table)

    def settings_read_by_decoding(self, partial_streams: bool) -> dict:
        """The settings that decoding a stream reads (evaluation versions its records by them):
        the layer starts are written into layered streams by the encoder, and the partial-stream
        settings concern only streams whose background was extracted away."""
        settings = dataclasses.asdict(self)
        del settings["layer_start_timesteps"]
        if not partial_streams:
            del settings["partial_stream_timestep"], settings["partial_stream_keeps_regions"]
        return settings

    @classmethod
    def read(cls, folder: Path) -> GenerativeConfig:
        path = folder / CONFIG_NAME
        try:
            values = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: unreadable generative decoder settings ({exc})") from exc
        return config_from_dict(cls, values)

    def write(self, folder: Path) -> None:
        (folder / CONFIG_NAME).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    def start_timestep(self, steps: int, quality: int | None, timesteps: int) -> int:
        """Where sampling with `steps` starts on a stream of `quality` that carries no start of its
        own (palette layers and partial streams do): the one-step mode's calibrated start, else
        `start_strength` of the schedule's `timesteps`."""
        if steps == 1:
            return self.one_step_start(quality)
        return round(self.start_strength * (timesteps - 1))

    def one_step_start(self, quality: int | None) -> int:
        """The one-step mode's start timestep for a stream of this quality (None: unknown)."""
        start = self.one_step_timestep
        for lowest, timestep in self.one_step_timesteps_by_quality:
            if quality is not None and quality >= lowest:
                start = timestep
        return start
