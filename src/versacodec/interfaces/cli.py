"""`versacodec` command line: compress | decompress | info | eval | train | ...

Every user-facing failure is a VersacodecError: one line on stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from versacodec.errors import VersacodecError

EXIT_USAGE = 2

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_USAGE, f"versacodec: error: {message} (see --help)\n")


def _train(args: argparse.Namespace) -> int:
    from versacodec.training.config import load_yaml_config
    from versacodec.training.registry import STAGES
    from versacodec.training.trainer import run_stage

    registry = {name: config_class for name, (config_class, _) in STAGES.items()}
    stage_name, config = load_yaml_config(args.config, registry)
    if stage_name != args.stage:
        raise VersacodecError(f"{args.config} configures stage {stage_name!r}, not {args.stage!r}")
    stage = STAGES[stage_name][1](config)
    final = run_stage(stage, progress=not args.no_progress)
    print(f"trained {stage_name}; exported to {final}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="versacodec", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train", help="run a training stage from a YAML config (resumes from its checkpoint)",
        description="Run one training stage. Re-running the same command resumes from "
        "OUTPUT_DIR/checkpoint.pt. Multi-GPU: `accelerate launch -m versacodec train ...`.",
    )
    train.add_argument("stage", help="stage name, e.g. autoencoder, latent_codec, prior, control")
    train.add_argument("--config", required=True, help="YAML file (see configs/)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    train.set_defaults(handler=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except VersacodecError as exc:
        print(f"versacodec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("versacodec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
