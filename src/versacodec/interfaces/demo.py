"""`versacodec demo`: the main job on the shipped model, end to end.

Compresses sample images (the package's own, plus a few Kodak images when the data directory is
present) to real .vcx files at two target rates, decodes them with every decoder the model has,
and prints file size, real bpp and quality (PSNR, LPIPS-alex) in a table.
"""

from __future__ import annotations

import time
from pathlib import Path

from versacodec.codec import Codec
from versacodec.fileio import atomic_write_bytes
from versacodec.imaging import save_image
from versacodec.paths import PACKAGE_DIR, data_dir

DEMO_RATES = (0.05, 0.1)
KODAK_SAMPLES = ("kodim04.png", "kodim14.png", "kodim23.png")


def demo_images() -> list[Path]:
    images = sorted((PACKAGE_DIR / "samples").glob("*.png"))
    root = data_dir()
    if root is not None:
        images += [root / "kodak" / name for name in KODAK_SAMPLES if (root / "kodak" / name).is_file()]
    return images


def run_demo(model: str | None, output: Path) -> list[dict]:
    import torch

    from versacodec.metrics.lpips import LPIPS
    from versacodec.metrics.quality import psnr

    codec = Codec.from_pretrained(model)
    decoders = ["direct"] + (["generative"] if codec.model.defaults.has_generative else [])
    output.mkdir(parents=True, exist_ok=True)
    lpips = LPIPS("alex")
    rows = []
    print(f"model {codec.model.model_id}; writing {output}/ (the demo replaces its own files there)")
    print(f"{'image':<22}{'target':>7}{'bpp':>8}{'bytes':>7}{'enc s':>7}  " +
          "  ".join(f"{d + ' PSNR/LPIPS (dec s)':>32}" for d in decoders))
    for path in demo_images():
        original = codec.model.load_image(path)
        for target in DEMO_RATES:
            started = time.perf_counter()
            encoded = codec.encode(original, bpp=target)
            encode_seconds = time.perf_counter() - started
            stem = f"{path.stem}-{target:g}bpp"
            atomic_write_bytes(output / f"{stem}.vcx", encoded.data)
            row = {"image": path.name, "target_bpp": target, "bpp": encoded.bits_per_pixel,
                   "bytes": len(encoded.data), "encode_seconds": encode_seconds}
            cells = []
            for decoder in decoders:
                started = time.perf_counter()
                decoded = codec.decode(encoded.data, decoder=decoder)
                seconds = time.perf_counter() - started
                save_image(decoded.image, output / f"{stem}-{decoder}.png")
                reference = original.pixels
                restored = codec.model.load_image(decoded.image.convert("RGB")).pixels
                with torch.inference_mode():
                    quality = (float(psnr(restored, reference)), float(lpips(restored, reference)))
                row[decoder] = {"psnr": quality[0], "lpips": quality[1], "decode_seconds": seconds}
                cells.append(f"{quality[0]:6.2f} dB / {quality[1]:.3f} ({seconds:4.1f} s)")
            rows.append(row)
            print(f"{path.name:<22}{target:>7.3f}{encoded.bits_per_pixel:>8.4f}{len(encoded.data):>7}"
                  f"{encode_seconds:>7.1f}  " + "  ".join(f"{c:>32}" for c in cells))
    return rows

