"""The `versacodec serve` command: options, loading the model, and running the HTTP server.

Import-light on purpose: the main CLI imports this module on every invocation, and Flask is an
optional extra (`versacodec[serve]`), so the server is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from versacodec.errors import InputError

DEFAULT_MAX_UPLOAD_MB = 25.0


def add_serve_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="local web page comparing versacodec with AVIF/HEIF/WebP/JPEG on your images",
        description="Start a local web page: upload an image (or pick a sample), choose a target bpp and "
        "decoder, and compare the reconstructions with AVIF, HEIF, WebP and JPEG at the same real file size "
        "(PSNR, LPIPS and DISTS of each), "
        "with detection and face overlays. Stop with Ctrl-C.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests for this host name (besides localhost, 127.0.0.1 and ::1), "
                       "e.g. the machine's address when listening on a network; repeatable")
    serve.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                       help=f"largest accepted upload in megabytes (default {DEFAULT_MAX_UPLOAD_MB:g})")
    serve.add_argument("--model", metavar="DIR",
                       help="model bundle folder (default: the model shipped in the package)")
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    if args.max_upload_mb <= 0:
        raise InputError("--max-upload-mb must be positive")
    try:
        from werkzeug.serving import make_server

        from versacodec.interfaces.web.server import create_app
    except ImportError as exc:
        raise InputError(f"versacodec serve needs {exc.name}: pip install 'versacodec[serve]'") from exc
    from versacodec.codec import Codec

    codec = Codec.from_pretrained(args.model)
    # A server bound to one address answers requests for it; one bound to all (0.0.0.0, ::) only
    # those for names given with --allow-host.
    bound = set() if args.host in ("0.0.0.0", "::", "") else {args.host.strip("[]")}
    app = create_app(codec, max_upload_bytes=int(args.max_upload_mb * 1e6),
                     allowed_hosts=frozenset(bound | set(args.allow_host)))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the page polls; a log line per poll is noise
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        raise InputError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    host = f"[{args.host}]" if ":" in args.host else args.host
    # Flushed at once: scripts and tests read the address to find a port picked with --port 0.
    print(f"versacodec serve: model {codec.model.model_id} at http://{host}:{server.server_port}/ (Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("versacodec serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
        app.extensions["versacodec-jobs"].shutdown()
    return 0
