"""versacodec — an image codec for people and machines.

Compress an image into a .vcx stream at a target bits-per-pixel or quality, decode it directly
or through the generative (diffusion) decoder, and inspect streams. Status lines go to stderr
(-q silences them); - is standard input or, with -o, standard output. Every failure prints one
line on stderr and exits with status 2; no file is replaced without --overwrite.

examples:
  versacodec compress photo.jpg -o photo.vcx --bpp 0.05
  versacodec decompress photo.vcx -o photo.png
  versacodec compress *.png -o streams/ --quality 60
  versacodec decompress - -o - < photo.vcx > photo.png
  versacodec info photo.vcx --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from versacodec.errors import InputError, VersacodecError
from versacodec.evaluation.cli import add_eval_parser
from versacodec.interfaces.batch import add_batch_parser
from versacodec.interfaces.web.command import add_serve_parser
from versacodec.options import DEFAULT_QUALITY, QUALITY_MAPS
from versacodec.version import __version__

if TYPE_CHECKING:
    from versacodec.options import Rate

EXIT_USAGE = 2
# The flag of each option an error may name (`VersacodecError.options`, in the API's spelling).
FLAGS = {"model": "--model", "quality": "--quality", "bpp": "--bpp", "seed": "--seed", "tags": "--no-tags",
         "task": "--task", "boxes": "--boxes", "layers": "--layers", "quality_map": "--quality-map",
         "decoder": "--decoder", "steps": "--steps",
         "cfg": "--cfg", "codecs": "--codecs", "workers": "--workers", "limit": "--limit", "set": "--set"}
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a tool killed by the signal reports
STDIO = "-"  # as an input: standard input; as -o: standard output
STREAM_SUFFIX = ".vcx"
DECODED_SUFFIX = ".png"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_USAGE, f"versacodec: error: {message} (see --help)\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Prose is filled to the terminal's width; the examples block is kept line for line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


# Every command's --help ends with these (eval has its own in its description).
EXAMPLES = {
    "compress": ["versacodec compress photo.jpg -o photo.vcx --bpp 0.05",
                 "versacodec compress photo.jpg -o photo.vcx --quality 60 --layers 4",
                 "versacodec compress street.jpg -o street.vcx --bpp 0.1 --task detection",
                 "versacodec compress a.png b.jpg -o streams/ --bpp 0.05      # streams/a.vcx, streams/b.vcx",
                 "versacodec compress a.png a.jpg -o 'out/{name}.vcx'          # out/a.png.vcx, out/a.jpg.vcx",
                 "cat photo.png | versacodec compress - -o - --bpp 0.05 > photo.vcx"],
    "decompress": ["versacodec decompress photo.vcx -o photo.png",
                   "versacodec decompress photo.vcx -o photo.png --decoder direct",
                   "versacodec decompress photo.vcx -o photo.png --steps 20 --cfg 5 --seed 1",
                   "versacodec decompress a.vcx b.vcx -o 'out/{stem}-decoded.png'",
                   "versacodec decompress - -o - < photo.vcx > photo.png"],
    "info": ["versacodec info photo.vcx", "versacodec info photo.vcx --json"],
    "extract": ["versacodec extract street.vcx --task detection -o street-detect.vcx",
                "versacodec extract both.vcx --task detection --layers 2 -o s.vcx   # made with --task and --layers"],
    "truncate": ["versacodec truncate photo.vcx --layers 2 -o photo-2.vcx", "versacodec info photo.vcx"],
    "train": ["versacodec train latent_codec --config configs/latent_codec.yaml",
              "versacodec train latent_codec --config configs/latent_codec.yaml --set schedule.time_budget_s=450"],
    "demo": ["versacodec demo", "versacodec demo -o /tmp/demo --model my-model"],
    "bench": ["versacodec bench", "versacodec bench --threads 1 --repeats 5 --json",
              "versacodec bench --model path/to/v4 --model path/to/v5    # side by side, on the same image"],
    "bundle": ["versacodec bundle --autoencoder runs/autoencoder/final --latent-codec runs/latent_codec/final "
               "--model-id my-model -o my-model"],
    "batch": ["versacodec batch photos/ streams/ --bpp 0.05 --workers 2",
              "versacodec batch streams/ decoded/ --decode",
              "versacodec batch photos/ streams/ --bpp 0.05 --engine ray"],
    "serve": ["versacodec serve", "versacodec serve --port 8080 --max-upload-mb 10"],
}


# --------------------------------------------------------------------------- inputs and outputs
def _read_input(name: str) -> bytes:
    if name == STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror}") from exc


def _output_paths(inputs: list[str], output: str, suffix: str) -> list[Path | None]:
    """Where each input's result goes (None: standard output). OUTPUT is a file for one input, '-',
    a folder given with a trailing '/' or for several inputs (FOLDER/STEM+suffix), or a pattern
    with {stem} or {name} (the input's file name without or with its extension)."""
    if output == STDIO:
        if len(inputs) > 1:
            raise InputError("-o - writes one output; give one input")
        return [None]
    if STDIO in inputs and len(inputs) > 1:
        raise InputError("standard input (-) can be one input only, with -o FILE or -o -")
    if "{" in output:
        try:
            paths = [Path(output.format(stem=Path(name).stem, name=Path(name).name)) for name in inputs]
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(f"-o {output}: a pattern may use {{stem}} and {{name}} only ({exc})") from None
    elif output.endswith(("/", os.sep)) or len(inputs) > 1:
        folder = Path(output)
        if STDIO in inputs:
            raise InputError("standard input (-) has no name to write into a folder; give -o FILE")
        paths = [folder / (Path(name).stem + suffix) for name in inputs]
    else:
        paths = [Path(output)]
    writers: dict[Path, str] = {}
    for name, path in zip(inputs, paths, strict=True):
        if path in writers:
            raise InputError(f"{writers[path]} and {name} would both write {path}; use a pattern such as "
                             f"-o '{path.parent / ('{name}' + suffix)}'")
        writers[path] = name
    if paths != [Path(output)]:  # a folder or a pattern: its folders are created, as batch creates OUT_DIR
        for folder in sorted({path.parent for path in paths}):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None
    return paths


def _check_stream_name(path: Path | None) -> None:
    """A stream written under an image's name (-o out.png) would be taken for a PNG by every viewer."""
    if path is None or path.suffix.lower() == STREAM_SUFFIX:
        return
    from PIL import Image

    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is not None:
        raise InputError(f"{path} is named as a {image_format} image, but compress writes a .vcx stream; "
                         f"name it {path.with_suffix(STREAM_SUFFIX).name} (decompress writes images)")


def _check_output(path: Path | None, overwrite: bool) -> None:
    """Fail before any work; `_write_output` checks again when the result is complete."""
    if path is None:
        return
    if path.is_dir():
        raise InputError(f"{path} is a folder; name a file, or write into it with -o {path}/")
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise InputError(f"output folder {path.parent} does not exist")


def _write_output(path: Path | None, data: bytes, overwrite: bool) -> None:
    from versacodec.fileio import atomic_write_bytes

    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        atomic_write_bytes(path, data, replace=overwrite)
    except FileExistsError:
        raise InputError(f"{path} was created while coding; kept it (pass --overwrite to replace it)") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; name a file") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _load_codec(args: argparse.Namespace):
    from versacodec.codec import Codec

    return Codec.from_pretrained(args.model)


def _say(args: argparse.Namespace, line: str) -> None:
    """Status and notes go to stderr, so that standard output carries only what was asked for."""
    if not args.quiet:
        print(line, file=sys.stderr)


def _emit(args: argparse.Namespace, to_stdout: bool, record: dict, line: str) -> None:
    """The result of one input: a JSON record with --json (on stdout unless the data goes there),
    else a status line."""
    if args.json:
        print(json.dumps(record), file=sys.stdout if to_stdout else sys.stderr, flush=True)
    else:
        _say(args, line)


# A stage's bar appears only once it has run this long, so quick work prints nothing but its line.
PROGRESS_DELAY_S = 1.0


def _progress(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """Bars on stderr for the codec's long stages (denoising steps, tiles of a large image); none with -q."""
    if args.quiet:
        return contextlib.nullcontext()
    from tqdm import tqdm

    from versacodec.progress import reporting

    def start(name: str, total: int) -> Callable[[], None]:
        bar = tqdm(total=total, desc=name, file=sys.stderr, delay=PROGRESS_DELAY_S, leave=False)

        def done() -> None:
            bar.update()
            if bar.n >= total:
                bar.close()

        return done

    return reporting(start)


def describe_error(exc: VersacodecError) -> str:
    """The message, with the flags of the options it concerns: the core names options, not flags."""
    flags = [FLAGS[name] for name in exc.options if name in FLAGS]
    return f"{exc} ({', '.join(flags)})" if flags else str(exc)


def _checked_outputs(args: argparse.Namespace, suffix: str) -> list[Path | None]:
    """Every input's output path, checked before the model loads, so that a bad -o fails at once."""
    outputs = _output_paths(args.inputs, args.output, suffix)
    for output in outputs:
        _check_output(output, args.overwrite)
        if suffix == STREAM_SUFFIX:
            _check_stream_name(output)
    return outputs


def _each_input(args: argparse.Namespace, outputs: list[Path | None], code: Callable[[str, Path | None], None]) -> int:
    """Run `code` on every input with its output path; a failing input is reported in one line
    and the others still run. Exit status 2 if any failed."""
    failed = 0
    for name, output in zip(args.inputs, outputs, strict=True):
        try:
            code(name, output)
        except VersacodecError as exc:
            if len(args.inputs) == 1:
                raise
            print(f"versacodec: error: {name}: {describe_error(exc)}", file=sys.stderr)
            failed += 1
    return EXIT_USAGE if failed else 0


def _refuse_before_loading(names: list[str], rate: Rate, model: str | None) -> None:
    """The refusals that need no loaded model, before torch and the model load: a quality outside
    the model's range (its config), and for a single input file (several report each failure and
    go on, in `_each_input`), from its header: what the codec's reader checks before decoding
    (Pillow's bomb guard, the pixel limit), the aspect limit, the memory limit by the model's
    estimate, and a byte budget below the smallest stream the model can write for that size (both
    recorded in its bundle.json). Such an image is refused in a fraction of a second rather than
    after the seconds of start-up; the codec checks all of these again, and bundles that record no
    bounds are checked there only."""
    from versacodec.bundle import quality_levels, read_manifest, resolve_model_dir
    from versacodec.imaging import check_declared_size
    from versacodec.limits import check_aspect, pixel_limit
    from versacodec.options import check_quality_level

    root = resolve_model_dir(model)
    manifest = read_manifest(root)
    if rate.quality is not None:
        check_quality_level(rate.quality, quality_levels(root, manifest))

    def check(width: int, height: int) -> None:
        check_aspect(width, height)
        if manifest.memory_estimate is not None:
            manifest.memory_estimate.check(width, height, "encode", InputError)
        budget = rate.budget(width, height)
        if budget is not None and manifest.stream_floor is not None:
            manifest.stream_floor.check(budget, width, height)

    if len(names) == 1 and names[0] != STDIO:
        check_declared_size(Path(names[0]), pixel_limit(), check)


def _refuse_streams_before_loading(names: list[str], model: str | None) -> None:
    """A single input stream whose header declares an image above the pixel limit, or above the
    memory limit by the model's recorded estimate, is refused before torch and the model load (the
    decoder checks both again; several inputs report each failure and go on, in `_each_input`)."""
    from versacodec.bundle import read_manifest, resolve_model_dir
    from versacodec.container.format import Stream
    from versacodec.errors import StreamError

    if len(names) != 1 or names[0] == STDIO:
        return
    estimate = read_manifest(resolve_model_dir(model)).memory_estimate
    header = Stream.from_bytes(_read_input(names[0])).header
    if estimate is not None:
        estimate.check(header.width, header.height, "decode", StreamError)


# --------------------------------------------------------------------------- commands
def _compress(args: argparse.Namespace) -> int:
    from versacodec.options import EncodeOptions

    options = EncodeOptions.of(quality=args.quality, bpp=args.bpp, seed=args.seed, tags=not args.no_tags,
                               task=args.task, boxes=args.boxes, layers=args.layers, quality_map=args.quality_map)
    outputs = _checked_outputs(args, STREAM_SUFFIX)
    _refuse_before_loading(args.inputs, options.rate, args.model)
    codec = _load_codec(args)

    def compress_one(name: str, output: Path | None) -> None:
        started = time.perf_counter()
        source = _read_input(STDIO) if name == STDIO else Path(name)
        with _progress(args):
            encoded = codec.encode(source, options)
        seconds = time.perf_counter() - started
        _write_output(output, encoded.data, args.overwrite)
        for note in encoded.notes:
            _say(args, f"note: {name}: {note}")
        shown = "(stdout)" if output is None else str(output)
        record = {"input": name, "output": shown, "bytes": len(encoded.data), "bpp": encoded.bits_per_pixel,
                  "quality": encoded.quality, "width": encoded.width, "height": encoded.height,
                  "seconds": round(seconds, 3), "notes": encoded.notes}
        _emit(args, output is not None, record,
              f"{shown}: {len(encoded.data)} bytes, {encoded.bits_per_pixel:.4f} bpp, quality {encoded.quality}, "
              f"{encoded.width}x{encoded.height}, {seconds:.2f} s")

    return _each_input(args, outputs, compress_one)


def _decompress(args: argparse.Namespace) -> int:
    from versacodec.imaging import encode_image
    from versacodec.options import DecodeOptions

    options = DecodeOptions(decoder=args.decoder, steps=args.steps, cfg=args.cfg, seed=args.seed)
    outputs = _checked_outputs(args, DECODED_SUFFIX)
    _refuse_streams_before_loading(args.inputs, args.model)
    codec = _load_codec(args)

    def decompress_one(name: str, output: Path | None) -> None:
        data = _read_input(name)
        started = time.perf_counter()
        with _progress(args):
            decoded = codec.decode(data, options)
        seconds = time.perf_counter() - started
        _write_output(output, encode_image(decoded.image, DECODED_SUFFIX if output is None else output.suffix),
                      args.overwrite)
        header = decoded.header
        shown = "(stdout)" if output is None else str(output)
        record = {"input": name, "output": shown, "width": header.width, "height": header.height,
                  "bpp": len(data) * 8 / (header.width * header.height), "decoder": decoded.decoder,
                  "seconds": round(seconds, 3)}
        _emit(args, output is not None, record,
              f"{shown}: {header.width}x{header.height} from {len(data)} bytes ({record['bpp']:.4f} bpp), "
              f"{decoded.decoder} decoder, {seconds:.2f} s")

    return _each_input(args, outputs, decompress_one)


def _rewrite_stream(args: argparse.Namespace, transform: Callable[[bytes], bytes], fields: dict[str, object],
                    describe: Callable[[int, int], str]) -> int:
    """Drop sections of a stream without re-encoding (extract, truncate) and write it atomically."""
    [output] = _output_paths([args.input], args.output, STREAM_SUFFIX)
    _check_output(output, args.overwrite)
    _check_stream_name(output)
    data = _read_input(args.input)
    kept = transform(data)
    _write_output(output, kept, args.overwrite)
    shown = "(stdout)" if output is None else str(output)
    record = {"input": args.input, "output": shown, **fields, "bytes_in": len(data), "bytes_out": len(kept),
              "saved": round(1 - len(kept) / len(data), 4)}
    _emit(args, output is not None, record, f"{shown}: {describe(len(kept), len(data))}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from versacodec.api import extract

    regions_kept = True

    def transform(data: bytes) -> bytes:
        nonlocal regions_kept
        from versacodec.container.format import SectionKind, Stream

        kept = extract(data, args.task, args.layers)
        # The task's regions live in the last (full) layer: a prefix of palette layers has none of them.
        regions_kept = bool(Stream.from_bytes(kept).sections_of(SectionKind.LATENT))
        return kept

    def describe(kept: int, total: int) -> str:
        layers = f"first {args.layers} layer(s)"
        what = (f"task {args.task!r}'s regions" + (f" and the {layers}" if args.layers else "") if regions_kept
                else f"the {layers} only, palette layers that carry none of task {args.task!r}'s regions (those "
                "are in the last layer)")
        return f"{kept} of {total} bytes kept: {what} ({1 - kept / total:.1%} fewer)"

    return _rewrite_stream(args, transform, {"task": args.task, "layers": args.layers}, describe)


def _truncate(args: argparse.Namespace) -> int:
    from versacodec.api import truncate

    return _rewrite_stream(args, lambda data: truncate(data, args.layers), {"layers": args.layers},
                           lambda kept, total: f"first {args.layers} layer(s), {kept} of {total} bytes")


def _bundle(args: argparse.Namespace) -> int:
    from versacodec.codec import CodecModel
    from versacodec.training.bundle import assemble_bundle, bundle_size

    output = assemble_bundle(Path(args.output), args.model_id, Path(args.autoencoder), Path(args.latent_codec),
                             Path(args.generative) if args.generative else None, half=not args.fp32,
                             partial_synthesis=Path(args.partial_synthesis) if args.partial_synthesis else None,
                             pixel_decoder=Path(args.pixel_decoder) if args.pixel_decoder else None,
                             direct_decoder=Path(args.direct_decoder) if args.direct_decoder else None)
    model = CodecModel.from_pretrained(output).load_components()  # proves the bundle loads strictly
    extras = [", partial streams with their own synthesis"] if model.partial_synthesis is not None else []
    extras += [f", {path} pixels from its own {type(decoder).__name__}"
               for path, decoder in model.pixel_decoders.items() if decoder is not None]
    print(f"{output}: model {model.model_id} (weights {model.weights_hash.hex()}), "
          f"{bundle_size(output) / 1e6:.1f} MB, decoders: {model.defaults.decoders[0]} by default{''.join(extras)}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from versacodec.interfaces.demo import run_demo

    run_demo(args.model, Path(args.output))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from versacodec.evaluation.bench import bench_json, print_bench, run_bench

    bench = run_bench(args.models or [None], args.repeats, args.threads, args.memory_side)
    if args.json:
        print(bench_json(bench))
    else:
        print_bench(bench)
    return 0


def _info(args: argparse.Namespace) -> int:
    from versacodec.interfaces.inspect import describe

    data = _read_input(args.input)
    report = describe(data)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    header = report["header"]
    print(f"{args.input}: versacodec stream v{report['format_version']}, {report['file_bytes']} bytes, "
          f"{report['bpp']:.4f} bpp")
    print(f"  image    {header['width']}x{header['height']} {header['colour']} "
          f"(original {header['bit_depth']}-bit)")
    print(f"  model    {header['model_id'] or 'weights'} {header['weights_hash']}")
    print(f"  quality  {header['quality']}   seed {header['seed']}")
    print(f"  header   {report['header_bytes']} bytes" + (f", checksum {report['checksum_bytes']} bytes"
                                                             if report["checksum_bytes"] else ""))
    for section in report["sections"]:
        extra = "".join(f"  {k}={v}" for k, v in section.get("details", {}).items())
        print(f"  section  {section['kind']:<12} {section['bytes']:>8} bytes{extra}")
    for layer in report["layers"]:
        print(f"  layer {layer['layer']}  {layer['kind']:<13} {layer['bytes']:>8} bytes   prefix "
              f"{layer['prefix_bytes']} bytes = {layer['prefix_bpp']:.4f} bpp")
    return 0


def _train(args: argparse.Namespace) -> int:
    from versacodec.training.config import load_yaml_config
    from versacodec.training.registry import STAGES
    from versacodec.training.trainer import run_stage

    stage_name, config = load_yaml_config(args.config, STAGES, args.set)
    if stage_name != args.stage:
        raise InputError(f"{args.config} configures stage {stage_name!r}, not {args.stage!r}")
    stage = STAGES[stage_name](config)
    final = run_stage(stage, progress=not args.no_progress, export_only=args.export_only)
    print(f"{'exported' if args.export_only else 'trained'} {stage_name}: {final}")
    return 0


# --------------------------------------------------------------------------- parser
def _model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="DIR",
                        help="model bundle folder (default: the model shipped in the package)")


def _outputs_help(suffix: str) -> str:
    return ("; with several inputs (or a trailing /) a folder, created if needed, that gets one file per input "
            "named after it, or a pattern with {stem} or {name} (the input's name without / with its extension), "
            f"e.g. -o 'out/{{stem}}-small{suffix}'")


def _output_options(parser: argparse.ArgumentParser, output_help: str) -> None:
    """-o/--output, --overwrite, --json and --quiet of every command that writes files."""
    parser.add_argument("-o", "--output", required=True, help=output_help)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that exist (without it no file is ever replaced, even one "
                        "created while the command runs)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON record per output (on stdout, or stderr when -o - takes stdout)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="versacodec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"versacodec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    compress = commands.add_parser(
        "compress", help="image (PNG/JPEG/WebP/...) → .vcx stream",
        description="Compress an image. With --bpp the real file is at most that many bits per pixel of "
        "the original image (the highest quality whose size the entropy model predicts within it, "
        "confirmed on the coded file); with --quality the rate setting is fixed. Any size works: the "
        "image is padded internally and cropped back on "
        "decode. RGBA, greyscale, palette and 16-bit inputs are converted, with a note.")
    compress.add_argument("inputs", nargs="+", metavar="INPUT", help="image file(s); - reads standard input")
    _output_options(compress, "output .vcx file, or - for standard output" + _outputs_help(STREAM_SUFFIX))
    compress.add_argument("--bpp", type=float, help="target bits per pixel (file size × 8 / pixels)")
    compress.add_argument("--quality", type=int,
                          help=f"rate setting from 0 (smallest) to the model's best (100 for the shipped one); "
                          f"default {DEFAULT_QUALITY}")
    compress.add_argument("--seed", type=int, default=0, help="seed stored for generative decoding")
    compress.add_argument("--no-tags", action="store_true",
                          help="do not send semantic tags (saves ~4-8 bytes; the generative decoder then runs "
                          "unconditioned)")
    compress.add_argument("--task", metavar="NAME|FILE",
                          help="structure the stream by a task profile (detection, people, vehicles, text, "
                          "salient, boxes, or a profile .yaml): the task's regions get their own section, so "
                          "`versacodec extract` can send only them")
    compress.add_argument("--layers", type=int, metavar="K",
                          help="scalable stream of K layers (2-9): K-1 palette layers, then the full stream; "
                          "`versacodec truncate` keeps any prefix without re-encoding")
    compress.add_argument("--quality-map", choices=QUALITY_MAPS,
                          help="where the bits go within the image: none (default) spends them evenly; "
                          "importance codes the blocks an ImageNet network finds most content in 20 qualities "
                          "finer and the rest coarser at the same size (COCO mAP +0.9 at 0.05 bpp, Kodak LPIPS "
                          "0.018 worse); regions (default with --task) does that for the task's regions. "
                          "A map costs ~10-20 bytes")
    compress.add_argument("--boxes", metavar="FILE.json",
                          help='regions for --task boxes: [{"label": "sign", "box": [x0, y0, x1, y1]}, ...] in pixels')
    _model_option(compress)
    compress.set_defaults(handler=_compress)

    decompress = commands.add_parser(
        "decompress", help=".vcx stream → image",
        description="Decode a .vcx stream to an image file (format from the extension; PNG recommended). "
        "The same stream decodes to the same image on this machine, within a stated tolerance on others "
        "(docs/api.md, Determinism).")
    decompress.add_argument("inputs", nargs="+", metavar="INPUT", help=".vcx file(s); - reads standard input")
    _output_options(decompress, "output image, e.g. out.png, or - for a PNG on standard output"
                    + _outputs_help(DECODED_SUFFIX))
    decompress.add_argument("--decoder", choices=("direct", "generative"),
                            help="generative (default when the model has it): diffusion prior guided by the "
                            "transmitted tags, realistic textures; direct: latent synthesis → autoencoder "
                            "decoder, no prior (higher PSNR, blurrier at low rates)")
    decompress.add_argument("--steps", type=int,
                            help="generative denoising steps: 1 = fast one-step mode (default), e.g. 4 or 20 "
                            "for DDIM from the compressed latent; 0 = no diffusion, the compressed latent "
                            "straight into the generative pixel decoder (fastest)")
    decompress.add_argument("--cfg", type=float, help="classifier-free guidance scale for the tags (default 5.0)")
    decompress.add_argument("--seed", type=int, help="override the seed stored in the stream")
    _model_option(decompress)
    decompress.set_defaults(handler=_decompress)

    info = commands.add_parser("info", help="describe a .vcx stream: header and sections",
                               description="Print the header fields and every section with its byte count. "
                               "With --json, section bytes plus header bytes equal the file size.")
    info.add_argument("input", help=".vcx file (- reads standard input)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=_info)

    extract = commands.add_parser(
        "extract", help="keep only a task's regions of a --task stream (no re-encoding)",
        description="Write the partial stream for one task: the hyperprior, region map, tags and that task's "
        "latent section; the background is dropped. It decodes with the plain `decompress`: the task's "
        "regions as sent, the missing latent predicted from the hyperprior and composed by the generative "
        "decoder.")
    extract.add_argument("input", help=".vcx file made with compress --task")
    extract.add_argument("--task", required=True,
                         help="the task whose regions to keep: its name, or the profile .yaml given to compress --task")
    extract.add_argument("--layers", type=int, metavar="k",
                         help="of a stream made with --task and --layers K, keep also only the first k layers")
    _output_options(extract, "output .vcx file, or - for standard output")
    extract.set_defaults(handler=_extract)

    truncate = commands.add_parser(
        "truncate", help="keep the first k layers of a --layers stream (no re-encoding)",
        description="Write the prefix of a layered stream made with compress --layers K: layers 1..k-1 are "
        "palette layers (coarse to fine), layer K the full-quality stream. `info` shows the bpp of each prefix.")
    truncate.add_argument("input", help=".vcx file made with compress --layers K")
    truncate.add_argument("--layers", type=int, required=True, metavar="k", help="how many layers to keep")
    _output_options(truncate, "output .vcx file, or - for standard output")
    truncate.set_defaults(handler=_truncate)

    train = commands.add_parser(
        "train", help="run a training stage from a YAML config (resumes from its checkpoint)",
        description="Run one training stage. Re-running the same command resumes from "
        "OUTPUT_DIR/checkpoint.pt. Multi-GPU: `accelerate launch -m versacodec train ...`.")
    train.add_argument("stage", help="stage name: autoencoder, latent_codec, ...")
    train.add_argument("--config", required=True, help="YAML file (see configs/)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config value, dotted for nested keys, the value in YAML "
                       "(--set schedule.time_budget_s=480 --set 'loss.lambdas=[0.01, 0.1]'); repeatable")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    train.add_argument("--export-only", action="store_true",
                       help="write the latest checkpoint's weights to OUTPUT_DIR/snapshot-STEP and stop")
    train.set_defaults(handler=_train)
    demo = commands.add_parser(
        "demo", help="compress and decompress sample images with the shipped model; print bpp and quality",
        description="The main job end to end: sample images (and a few Kodak images when ../shared/data is "
        "present) are compressed to real .vcx files at 0.05 and 0.1 bpp and decoded with every decoder the "
        "model has; the table shows real bpp, file size, PSNR and LPIPS.")
    demo.add_argument("-o", "--output", default="demo-output", help="folder for the .vcx and .png files")
    _model_option(demo)
    demo.set_defaults(handler=_demo)

    bench = commands.add_parser(
        "bench", help="time encoding and decoding, measure encode and decode memory for a 2048x2048 image",
        description="Benchmarks on this machine: encode (fixed quality and target bpp) and decode (direct; "
        "generative with 0, 1, 4 and 20 steps, or in one pass for a model without a diffusion prior; the "
        "model's default decode) of a Kodak-size image, and peak memory of encoding and decoding a large "
        "image. Several models run one after another on the same image, printed as one table with a column "
        "per model; issue #35's targets (encode <= 1.0 s, default decode <= 1.5 s, 2048x2048 within 4 GB) "
        "are marked met or not.")
    bench.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median reported)")
    bench.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    bench.add_argument("--memory-side", type=int, default=2048,
                       help="side of the large-image memory test (default 2048, the size of issue #35's 4 GB target)")
    bench.add_argument("--json", action="store_true",
                       help="print the results as JSON: the image and settings once, each model's measurements in "
                       "a list (\"results\")")
    bench.add_argument("--model", metavar="DIR", action="append", dest="models",
                       help="model bundle folder; repeat to compare models side by side (default: the shipped model)")
    bench.set_defaults(handler=_bench)

    bundle = commands.add_parser(
        "bundle", help="assemble trained stage outputs into a model bundle folder",
        description="Copy the trained autoencoder, latent codec and (optionally) generative decoder into one "
        "model folder usable with --model, with weights stored in float16 (the numbers a bundle reports are "
        "measured on exactly what ships). Example: versacodec bundle --autoencoder runs/autoencoder/final "
        "--latent-codec runs/control_stage3/final/latent_codec --generative runs/control_stage3/final/generative "
        "--model-id vc-2026.11 -o src/versacodec/weights/default")
    bundle.add_argument("--autoencoder", required=True, help="autoencoder folder (save_pretrained)")
    bundle.add_argument("--latent-codec", required=True, help="latent codec folder")
    bundle.add_argument("--generative", help="generative decoder folder: a diffusion prior (unet/, controlnet/, "
                        "tags/, ...), or a pixel decoder run's final/ that renders ẑ in one pass (v5)")
    bundle.add_argument("--partial-synthesis",
                        help="synthesis trained on dropped regions (a control run's final/partial_synthesis), "
                             "used only for streams whose sections were extracted away")
    bundle.add_argument("--pixel-decoder",
                        help="the generative path's own pixel decoder (a pixel_decoder run's final/, "
                             "trained on generated latents)")
    bundle.add_argument("--direct-decoder",
                        help="the direct path's own pixel decoder (a pixel_decoder run's final/, trained on ẑ); "
                             "without it the direct path decodes with the autoencoder's decoder")
    bundle.add_argument("--model-id", required=True, help="name written into every stream")
    bundle.add_argument("-o", "--output", required=True, help="new folder for the bundle")
    bundle.add_argument("--fp32", action="store_true", help="keep float32 weights")
    bundle.set_defaults(handler=_bundle)

    add_eval_parser(commands)
    add_batch_parser(commands)
    add_serve_parser(commands)
    for name, lines in EXAMPLES.items():
        command = commands.choices[name]
        command.epilog = "examples:\n" + "".join(f"  {line}\n" for line in lines)
        command.formatter_class = _HelpFormatter
    return parser


# Options whose value is a number. argparse takes a value such as -inf or -nan for an option of its
# own ("expected one argument"), since only digits after the minus look like a number to it.
NUMBER_OPTIONS = {"--bpp", "--quality", "--seed", "--steps", "--cfg", "--layers", "--workers"}


def _attach_negative_values(argv: Sequence[str]) -> list[str]:
    """`--bpp -inf` → `--bpp=-inf`, so that the option's own check reports the value."""
    argv = list(argv)
    attached: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in NUMBER_OPTIONS and index + 1 < len(argv) and argv[index + 1].startswith("-") \
                and _is_number(argv[index + 1]):
            attached.append(f"{token}={argv[index + 1]}")
            index += 2
            continue
        attached.append(token)
        index += 1
    return attached


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        code = args.handler(args)
        sys.stdout.flush()  # inside the try: a reader that stopped early fails this flush
        return code
    except VersacodecError as exc:
        print(f"versacodec: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("versacodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `versacodec info x.vcx | head -1`: the reader has all it wanted. Point stdout at /dev/null so
        # that the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
