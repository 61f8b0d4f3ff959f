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
        description="Kodak (24 images; human metrics incl. FID/KID), coco-val-mini (79; detection, "
        "segmentation) and imagenet-eval (first 50 of the 200-image subset; top-1), every baseline and "
        "versacodec direct + generative at 0.025-0.2 bpp, with uncompressed reference rows; in docs/results/",
        plans=(
            DatasetPlan("kodak", ("psnr", "ms-ssim", "lpips", "dists", "fid", "kid", "periodic", "colour-shift"), ()),
            DatasetPlan("coco", ("psnr",), ("detection", "instance-segmentation", "semantic-segmentation")),
            # The first 50 of the 200-image subset: about 25 s per image for 9 codecs × 4 rates on two
            # CPU cores; `--limit 200` takes them all (and every Kodak and COCO image).
            DatasetPlan("imagenet", ("psnr",), ("classification", "classification-mobilenet"), limit=50),
        ),
        codecs=("jpeg", "webp", "avif", "avif-svt", "heif", "jp2", "jxl", "versacodec-direct",
                "versacodec-generative"),
        rates=(0.025, 0.05, 0.1, 0.2),
        anchor="heif",
        out="docs/results",
    ),
}
