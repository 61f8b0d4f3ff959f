"""Partial streams: keep only a task's region section (DISCOVER's partial transmission).

`extract_task` drops the background and every other region set's latent section without
re-encoding; the hyperprior, region map and tags stay, so the partial stream decodes to a whole
image (the missing latent is predicted from the hyperprior and composed by the generative
decoder). `keep_sent_regions` then keeps the latent that was sent as it was decoded: the prior
composes only what was dropped (re-generating the sent regions too cost 1.2 mAP,
docs/experiments/model-history-v1-v3.md).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from versacodec.container.format import SectionKind, Stream, latent_part
from versacodec.errors import InputError
from versacodec.semantics.region_map import read_region_sets


def region_set_names(stream: Stream) -> list[str]:
    return [region_set.name for region_set in read_region_sets(stream)]


def extract_task(data: bytes, task: str) -> bytes:
    """Keep `task`'s regions: a region set name, or the profile file (.yaml) the stream was made with."""
    if task.endswith((".yaml", ".yml")) and Path(task).is_file():
        from versacodec.semantics.profiles import load_profile

        task = load_profile(task).name
    stream = Stream.from_bytes(data)
    names = region_set_names(stream)
    if not names:
        raise InputError("this stream has no task regions; compress it with --task NAME first")
    if task not in names:
        raise InputError(f"this stream has regions for {', '.join(names)}, not {task!r}")
    keep = names.index(task)
    sections = [section for section in stream.sections
                if section.kind != SectionKind.LATENT or latent_part(section)[0] == keep]
    return stream.with_sections(sections).to_bytes()


def keep_sent_regions(decoded: torch.Tensor, generated: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:
    """`decoded` (1, C, h, w) where a partial stream's latent was `sent` ((h', w') bool on y's
    coarser grid), `generated` elsewhere, cross-faded over one latent cell so no seam shows."""
    scale = decoded.shape[-1] // sent.shape[-1]
    mask = F.interpolate(sent[None, None].to(decoded.dtype), scale_factor=scale, mode="nearest")
    mask = F.avg_pool2d(mask, 3, stride=1, padding=1, count_include_pad=False)
    return mask * decoded + (1 - mask) * generated
