"""Named evaluation set-ups. `report` regenerates the committed report in docs/results/."""

from __future__ import annotations

from dataclasses import dataclass

from versacodec.evaluation.runner import DatasetPlan


@dataclass(frozen=True)
class Preset:
    description: str
    plans: tuple[DatasetPlan, ...]
    codecs: tuple[str, ...]
    rates: tuple[float, ...]
    anchor: str
    out: str


PRESETS = {
    "report": Preset(
        description="Kodak (human metrics incl. FID/KID), coco-val-mini (detection, segmentation) and "
        "imagenet-eval (top-1), every baseline and versacodec direct + generative at 0.025-0.2 bpp, "
        "with uncompressed reference rows; written to docs/results/",
        plans=(
            DatasetPlan("kodak", ("psnr", "ms-ssim", "lpips", "dists", "fid", "kid"), ()),
            DatasetPlan("coco", ("psnr",), ("detection", "instance-segmentation", "semantic-segmentation")),
            DatasetPlan("imagenet", ("psnr",), ("classification", "classification-mobilenet")),
        ),
        codecs=("jpeg", "webp", "avif", "avif-svt", "heif", "jp2", "jxl", "versacodec-direct",
                "versacodec-generative"),
        rates=(0.025, 0.05, 0.1, 0.2),
        anchor="heif",
        out="docs/results",
    ),
}
