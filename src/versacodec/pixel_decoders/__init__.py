"""Pixel decoders: the last stage of a decode path, a latent → an image.

Without one, a path decodes with the autoencoder's own decoder. A bundle may hold one per path:
`direct_decoder/` (the direct path) and `generative/pixel_decoder/` (the generative path). Each
folder's `config.json` names its class:

- `DecoderTail` (`tail.py`): the autoencoder decoder with its upsampling tail fine-tuned;
- `RestorationDecoder` (`restoration.py`): the autoencoder decoder to 1/4 resolution, then a
  pretrained Real-ESRGAN generator (`realesrgan/`) fine-tuned here;
- `FineTunedTAEF2Decoder` (`taef2_decoder.py`): TAEF2's whole decoder, fine-tuned on the codec's ẑ.

All are `PixelDecoder`s (`base.py`): `decode(autoencoder, latents) -> pixels` and
`check_fits(latent_space)`.
"""

from __future__ import annotations

import json
from pathlib import Path

from versacodec.bundle import COMPONENT_CLASSES
from versacodec.errors import ModelError
from versacodec.fileio import CONFIG_NAME
from versacodec.pixel_decoders.base import PixelDecoder
from versacodec.pixel_decoders.restoration import RestorationDecoder
from versacodec.pixel_decoders.taef2_decoder import FineTunedTAEF2Decoder
from versacodec.pixel_decoders.tail import DecoderTail

# The names a pixel decoder's config may give (the classes live in the bundle's one registry).
PIXEL_DECODER_CLASS_NAMES = tuple(name for cls in (DecoderTail, RestorationDecoder, FineTunedTAEF2Decoder)
                                  for name in (cls.__name__, *getattr(cls, "legacy_class_names", ())))


def load_pixel_decoder(folder: Path) -> PixelDecoder:
    """The pixel decoder saved in `folder`, of the class its config names."""
    try:
        name = json.loads((folder / CONFIG_NAME).read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelError(f"{folder}: unreadable pixel decoder config ({exc})") from exc
    if name not in PIXEL_DECODER_CLASS_NAMES:
        raise ModelError(f"{folder}: unknown pixel decoder class {name!r}; "
                         f"choose from {', '.join(PIXEL_DECODER_CLASS_NAMES)}")
    return COMPONENT_CLASSES[name].from_pretrained(folder)
