"""The HTTP side of the comparison page: the Flask app and its routes.

The page (plain HTML/CSS/JS in `versacodec/interfaces/static/`) uploads an image as the raw
request body, starts a comparison job, polls its progress and then fetches the decoded images and
coded files. Everything is served from the package; nothing is fetched from elsewhere.

    POST /api/images            raw image bytes → {id, width, height, notes}
    POST /api/jobs              JSON settings + image id → {id}
    GET  /api/jobs/ID           {state, stage, progress, error, result}
    GET  /api/images/ID.png     the uploaded image as the codec reads it
    GET  /api/jobs/ID/files/N   a decoded PNG or a coded file (.vcx, .avif, ...)
"""

from __future__ import annotations

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


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


def create_app(codec: Codec, *, max_upload_bytes: int, overlays: Overlays | None = None) -> Flask:
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    # Flask rejects larger bodies with 413 before reading them; the handler below words it.
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    overlays = overlays or Overlays()
    capabilities = Capabilities.of(codec)
    uploads: Recent[LoadedImage] = Recent(KEPT_UPLOADS)
    runner = JobRunner(KEPT_UPLOADS)
    app.extensions["versacodec-jobs"] = runner

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
            model={"id": codec.model_id, "generative": codec.generative is not None},
            decoders=capabilities.decoders, task_profiles=capabilities.task_profiles, layers=capabilities.layers,
            default_steps=capabilities.default_steps, default_cfg=capabilities.default_cfg, default_bpp=DEFAULT_BPP,
            baselines=[{"name": name, "label": label} for name, (label, _, _) in BASELINES.items()],
            overlays=[{"name": s.name, "available": s.available, "reason": s.reason} for s in overlays.status],
            samples=sorted(path.name for path in SAMPLES_DIR.glob("*.png")), max_upload_bytes=max_upload_bytes)

    @app.post("/api/images")
    def upload():
        data = request.get_data(cache=False)
        if not data:
            return _error("the upload is empty: choose an image file", 400)
        try:
            loaded = codec.load(data)
        except InputError as exc:  # the image reader calls bytes it was given "input"
            return _error(str(exc).replace("input is", "the upload is", 1), 400)
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
