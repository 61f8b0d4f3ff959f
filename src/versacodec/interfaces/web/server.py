"""The HTTP side of the comparison page: the Flask app and its routes.

The page (plain HTML/CSS/JS in `versacodec/interfaces/static/`) uploads an image as the raw
request body, starts a comparison job, polls its progress and then fetches the decoded images and
coded files. Everything is served from the package; nothing is fetched from elsewhere.

Any web page the user visits can send requests to a local server, so the server answers only
requests addressed to itself (a loopback Host or one allowed with --allow-host: a DNS-rebinding
page's Host is its own domain), refuses POSTs from other origins, and accepts only content types
that a cross-origin page cannot send without a preflight (image/*, application/octet-stream,
application/json). Bodies above the upload limit get 413, also when sent chunked; an image's
declared size is checked against the codec's memory limit before it is decoded, and the uploads
kept for later jobs are bounded in bytes as well as in number.

    POST /api/images            raw image bytes (image/* or application/octet-stream) → {id, width, height, notes}
    POST /api/jobs              JSON settings + image id → {id}
    GET  /api/jobs/ID           {state, stage, progress, error, result}
    GET  /api/images/ID.png     the uploaded image as the codec reads it
    GET  /api/jobs/ID/files/N   a decoded PNG or a coded file (.vcx, .avif, ...)
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from versacodec.codec import Codec
from versacodec.errors import InputError
from versacodec.imaging import LoadedImage, to_pil
from versacodec.interfaces.web.comparison import (
    BASELINES,
    Capabilities,
    Comparison,
    Settings,
    png_bytes,
    run_comparison,
)
from versacodec.interfaces.web.jobs import JobRunner, Recent
from versacodec.interfaces.web.overlays import Overlays
from versacodec.paths import PACKAGE_DIR

STATIC_DIR = PACKAGE_DIR / "interfaces" / "static"
SAMPLES_DIR = PACKAGE_DIR / "samples"
DEFAULT_BPP = 0.1
KEPT_UPLOADS = 8  # uploads and finished jobs kept in memory (decoded images are large)
KEPT_UPLOAD_BYTES = 1 << 30  # and at most this much of uploaded pixels (float32, 12 bytes a pixel)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
UPLOAD_TYPES = ("image/", "application/octet-stream")


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


def _hostname(host: str) -> str:
    """'[::1]:8000' → '::1', 'Example.org:80' → 'example.org'; '' for what is no host name."""
    try:
        return (urlsplit(f"//{host}").hostname or "").lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ""


def _read_body(limit: int) -> bytes:
    """The request body, or 413. Flask enforces the limit for a declared Content-Length, but cuts a
    chunked body short at the limit without saying so, which would reach the image reader as a
    damaged file."""
    if request.content_length is not None:
        return request.get_data(cache=False)
    data = request.environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise RequestEntityTooLarge()
    return data


def create_app(codec: Codec, *, max_upload_bytes: int, overlays: Overlays | None = None,
               allowed_hosts: frozenset[str] = frozenset(), kept_upload_bytes: int = KEPT_UPLOAD_BYTES) -> Flask:
    """`allowed_hosts`: host names answered besides the loopback ones (the address of a server
    listening on a network)."""
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    # Flask rejects larger bodies with 413 before reading them; the handler below words it.
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    overlays = overlays or Overlays()
    capabilities = Capabilities.of(codec)
    defaults = capabilities.defaults
    hosts = LOOPBACK_HOSTS | {host.lower() for host in allowed_hosts}
    uploads: Recent[LoadedImage] = Recent(KEPT_UPLOADS, kept_upload_bytes,
                                          lambda loaded: loaded.pixels.numel() * loaded.pixels.element_size())
    runner = JobRunner(KEPT_UPLOADS)
    app.extensions["versacodec-jobs"] = runner

    @app.before_request
    def only_this_server():
        host = _hostname(request.host)
        if host not in hosts:
            return _error(f"this server answers only requests for {', '.join(sorted(hosts))}, not {host!r} "
                          "(versacodec serve --allow-host)", 403)
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            return _error(f"requests from other sites ({origin}) are refused", 403)
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return _error("requests from other sites are refused", 403)
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_: RequestEntityTooLarge):
        return _error(f"the upload is larger than the limit of {max_upload_bytes / 1e6:g} MB "
                      "(versacodec serve --max-upload-mb)", 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _error(f"{exc.code} {exc.name}", exc.code or 500)

    @app.get("/")
    def index():
        return send_from_directory(STATIC_DIR, "index.html")

    @app.get("/samples/<name>")
    def sample(name: str):
        return send_from_directory(SAMPLES_DIR, name)

    @app.get("/api/config")
    def config():
        return jsonify(
            model={"id": codec.model.model_id, "generative": defaults.has_generative},
            decoders=defaults.decoders, task_profiles=capabilities.task_profiles,
            default_steps=defaults.steps, default_cfg=defaults.cfg, default_bpp=DEFAULT_BPP,
            baselines=[{"name": name, "label": baseline.label} for name, baseline in BASELINES.items()],
            overlays=[{"name": s.name, "available": s.available, "reason": s.reason} for s in overlays.status],
            samples=sorted(path.name for path in SAMPLES_DIR.glob("*.png")), max_upload_bytes=max_upload_bytes)

    @app.post("/api/images")
    def upload():
        if not request.mimetype.startswith(UPLOAD_TYPES):
            return _error("send the image as the request body with its image/* type or application/octet-stream, "
                          f"not {request.mimetype or 'no type'}", 415)
        data = _read_body(max_upload_bytes)
        if not data:
            return _error("the upload is empty: choose an image file", 400)
        try:
            loaded = codec.model.load_image(data, name="the upload")
        except InputError as exc:
            return _error(str(exc), 400)
        return jsonify(id=uploads.add(loaded), width=loaded.width, height=loaded.height, notes=loaded.notes)

    @app.get("/api/images/<image_id>.png")
    def uploaded_image(image_id: str):
        # The pixels as the codec sees them (orientation applied, alpha composited), whatever the
        # upload's format, so the browser can always show it.
        loaded = uploads.get(image_id)
        if loaded is None:
            return _error("unknown or expired image: upload it again", 404)
        return Response(png_bytes(to_pil(loaded.pixels)), mimetype="image/png")

    @app.post("/api/jobs")
    def start_job():
        if request.mimetype != "application/json":
            return _error("the settings must be sent as application/json", 415)
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _error("the request body must be a JSON object", 400)
        loaded = uploads.get(str(payload.get("image", "")))
        if loaded is None:
            return _error("unknown or expired image: upload it again", 404)
        try:
            settings = Settings.from_json(payload, capabilities)
        except InputError as exc:
            return _error(str(exc), 400)
        job_id = runner.submit(lambda report: run_comparison(codec, overlays, loaded, settings, report))
        return jsonify(id=job_id), 202

    @app.get("/api/jobs/<job_id>")
    def job_status(job_id: str):
        job = runner.jobs.get(job_id)
        if job is None:
            return _error("unknown or expired job", 404)
        status = job.snapshot()
        if status["state"] == "done":
            status["result"] = job.result.summary()
        return jsonify(status)

    @app.get("/api/jobs/<job_id>/files/<name>")
    def job_file(job_id: str, name: str):
        job = runner.jobs.get(job_id)
        result: Comparison | None = job.result if job is not None else None
        if result is None or name not in result.files:
            return _error("no such file", 404)
        content, mime = result.files[name]
        return Response(content, mimetype=mime)

    return app
