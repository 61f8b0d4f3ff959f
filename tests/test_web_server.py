"""The `versacodec serve` endpoints without a browser: uploads, the job flow, errors, samples."""

from __future__ import annotations

import importlib.util
import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import declared_png, forbid_decoding, natural_image, shared_dir

pytest.importorskip("flask", reason="the serve extra is not installed (pip install 'versacodec[serve]')")

from versacodec.codec.model import ModelDefaults
from versacodec.errors import InputError
from versacodec.interfaces.cli import main
from versacodec.interfaces.web.comparison import Capabilities, Settings
from versacodec.interfaces.web.jobs import JobRunner, Recent
from versacodec.interfaces.web.overlays import Overlays, OverlayStatus
from versacodec.interfaces.web.server import SAMPLES_DIR, create_app

REPO = Path(__file__).resolve().parent.parent
UPLOAD_LIMIT = 300_000


class FixedOverlays(Overlays):
    """Overlays without the model files: one box and one face wherever the detectors would run."""

    @property
    def status(self) -> list[OverlayStatus]:
        return [OverlayStatus("detection", True, ""), OverlayStatus("faces", False, "model file face.onnx not found")]

    def annotate(self, image: Image.Image) -> dict[str, list[dict]]:
        return {"detection": [{"box": [1.0, 2.0, 10.0, 12.0], "score": 0.9, "label": "cat"}]}


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def client(tiny_codec):
    app = create_app(tiny_codec, max_upload_bytes=UPLOAD_LIMIT, overlays=FixedOverlays())
    yield app.test_client()
    app.extensions["versacodec-jobs"].shutdown()


def upload(client, image: Image.Image) -> dict:
    response = client.post("/api/images", data=png(image), content_type="image/png")
    assert response.status_code == 200, response.json
    return response.json


def finish(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json
        assert 0.0 <= status["progress"] <= 1.0
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_page_config_and_samples_are_served(client):
    assert b"<title>versacodec" in client.get("/").data
    assert client.get("/static/app.js").status_code == 200
    config = client.get("/api/config").json
    assert config["decoders"] == ["direct"]  # the tiny bundle has no generative decoder
    assert config["max_upload_bytes"] == UPLOAD_LIMIT
    assert [b["name"] for b in config["baselines"]] == ["avif", "heif", "webp", "jpeg"]
    assert config["overlays"][1] == {"name": "faces", "available": False, "reason": "model file face.onnx not found"}
    assert len(config["samples"]) >= 2
    sample = client.get(f"/samples/{config['samples'][0]}")
    assert Image.open(io.BytesIO(sample.data)).size[0] > 0
    assert client.get("/samples/..%2Fcodec.py").status_code == 404


def test_a_v5_model_offers_its_one_pass_generative_decoder_and_runs_a_job(v5_bundle):
    from versacodec.codec import Codec

    app = create_app(Codec.from_pretrained(v5_bundle), max_upload_bytes=UPLOAD_LIMIT, overlays=FixedOverlays())
    client = app.test_client()
    try:
        config = client.get("/api/config").json
        assert config["decoders"] == ["generative", "direct"] and config["default_steps"] is None
        info = upload(client, natural_image(96, 64))
        response = client.post("/api/jobs", json={"image": info["id"], "bpp": "0.5",
                                                  "decoders": ["generative", "direct"], "baselines": []})
        assert response.status_code == 202, response.json
        status = finish(client, response.json["id"])
        assert status["state"] == "done", status["error"]
        labels = [r["label"] for r in status["result"]["renditions"]]
        assert labels == ["versacodec, generative", "versacodec, direct"]
    finally:
        app.extensions["versacodec-jobs"].shutdown()


def test_uploads_that_are_not_images_empty_or_too_large_get_clear_messages(client):
    response = client.post("/api/images", data=b"this is a text file, not a picture",
                           content_type="application/octet-stream")
    assert response.status_code == 400
    assert response.json["error"] == "the upload is not an image file Pillow can read"
    response = client.post("/api/images", data=b"", content_type="image/png")
    assert response.status_code == 400 and "empty" in response.json["error"]
    response = client.post("/api/images", data=b"\0" * (UPLOAD_LIMIT + 1), content_type="image/png")
    assert response.status_code == 413
    assert response.json["error"] == ("the upload is larger than the limit of 0.3 MB "
                                      "(versacodec serve --max-upload-mb)")


def test_upload_returns_the_image_as_the_codec_reads_it(client):
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 128))
    info = upload(client, rgba)
    assert (info["width"], info["height"]) == (40, 30)
    assert info["notes"] == ["alpha channel dropped (composited on white)"]
    shown = Image.open(io.BytesIO(client.get(f"/api/images/{info['id']}.png").data))
    assert shown.mode == "RGB" and shown.getpixel((0, 0)) == (255, 127, 127)


def test_job_codes_decodes_and_compares_at_the_real_file_size(client, tiny_codec):
    image = natural_image(96, 80)
    info = upload(client, image)
    response = client.post("/api/jobs", json={"image": info["id"], "bpp": "0.5", "decoders": ["direct"],
                                              "baselines": ["jpeg"], "overlays": True})
    assert response.status_code == 202
    status = finish(client, response.json["id"])
    assert status["state"] == "done", status["error"]
    assert status["progress"] == 1.0
    result = status["result"]
    ours, jpeg = result["renditions"]
    files = f"/api/jobs/{response.json['id']}/files"
    vcx = client.get(f"{files}/{ours['file']}")
    assert vcx.mimetype == "application/x-versacodec"
    assert len(vcx.data) == ours["bytes"] and ours["bpp"] == len(vcx.data) * 8 / (96 * 80) <= 0.5
    # The PNG on the page is exactly what the stream decodes to.
    decoded = tiny_codec.decode(vcx.data, decoder="direct").image
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(client.get(f"{files}/{ours['image']}").data))),
                          np.asarray(decoded))
    # JPEG gets versacodec's real size as its budget.
    jpeg_file = client.get(f"{files}/{jpeg['file']}")
    assert jpeg_file.mimetype == "image/jpeg" and len(jpeg_file.data) == jpeg["bytes"] <= ours["bytes"]
    assert jpeg["psnr"] > 0 and jpeg["setting"].startswith("quality")
    assert 0 < jpeg["lpips"] < 1 and 0 < jpeg["dists"] < 1 and 0 < ours["lpips"] < 1  # beside PSNR on the page
    assert result["original"]["overlays"]["detection"][0]["label"] == "cat"
    assert ours["overlays"]["detection"][0]["box"] == [1.0, 2.0, 10.0, 12.0]
    assert "faces overlay skipped: model file face.onnx not found" in result["messages"]
    assert result["tags"] == []
    assert client.get(f"{files}/../secret").status_code == 404


def test_job_failure_is_reported_in_one_line(client):
    info = upload(client, natural_image(64, 64))
    job = client.post("/api/jobs", json={"image": info["id"], "bpp": 1e-4, "decoders": ["direct"]}).json
    status = finish(client, job["id"])
    assert status["state"] == "failed"
    assert "below this model's smallest file" in status["error"] and "\n" not in status["error"]


@pytest.mark.parametrize(("change", "status", "message"), [
    ({"image": "gone"}, 404, "unknown or expired image: upload it again"),
    ({"bpp": -1}, 400, "target bpp must be a positive number up to 64, not -1"),
    ({"bpp": "lots"}, 400, "bpp must be a number, not 'lots'"),
    ({"decoders": []}, 400, "choose at least one decoder"),
    ({"decoders": ["generative"]}, 400, "this model bundle has no generative decoder; decode with the direct one"),
    ({"baselines": ["bmp"]}, 400, "unknown baseline 'bmp'; choose from avif, heif, webp, jpeg"),
    ({"bpp": 1e305}, 400, "target bpp must be a positive number up to 64, not 1e+305"),
    ({"seed": -1}, 400, "seed must be from 0 to 34359738367, not -1"),
    ({"steps": float("inf")}, 400, "steps must be an integer, not inf"),
    ({"decoders": 1}, 400, "decoders must be a list of names, not 1"),
    ({"baselines": {"jpeg": 1}}, 400, "baselines must be a list of names, not {'jpeg': 1}"),
    ({"task": ["people"]}, 400, "task profile ['people'] is not available; choose from boxes, detection, people, "
                                "salient, text, vehicles"),
    ({"cfg": True}, 400, "cfg must be a number, not True"),
    ({"layers": 1}, 400, "layers must be between 2 and 9, not 1"),
    ({"overlays": "yes"}, 400, "overlays must be true or false, not 'yes'"),
    ({"overlays": 0}, 400, "overlays must be true or false, not 0"),
    ({"task": "no-such-task"}, 400,
     "task profile 'no-such-task' is not available; choose from boxes, detection, people, salient, text, vehicles"),
])
def test_bad_job_settings_are_refused(client, change, status, message):
    info = upload(client, natural_image(32, 32))
    response = client.post("/api/jobs", json={"image": info["id"], "bpp": 0.5, "decoders": ["direct"]} | change)
    assert response.status_code == status
    assert response.json["error"] == message
    assert client.get("/api/jobs/nope").status_code == 404


def test_settings_parse_numbers_strictly():
    capabilities = Capabilities(ModelDefaults(101, ("direct", "generative"), steps=1, cfg=5.0),
                                task_profiles=("people",))
    settings = Settings.from_json({"bpp": "0.05", "decoders": ["generative"], "steps": "4", "cfg": "2.5",
                                   "seed": "", "task": "people", "layers": "3"}, capabilities)
    encode, (decode,) = settings.encode, settings.decodes
    assert (encode.rate.bpp, decode.steps, decode.cfg, encode.seed, encode.task.name, encode.layers) == (
        0.05, 4, 2.5, 0, "people", 3)
    with pytest.raises(InputError, match=re.escape("steps must be an integer, not '2.5'")):
        Settings.from_json({"bpp": 1, "decoders": ["direct"], "steps": "2.5"}, capabilities)


def test_recent_forgets_the_oldest_entries():
    recent: Recent[int] = Recent(2)
    keys = [recent.add(value) for value in range(3)]
    assert recent.get(keys[0]) is None and [recent.get(k) for k in keys[1:]] == [1, 2]


def test_serve_command_reports_a_missing_model_in_one_line(tmp_path, capsys):
    assert main(["serve", "--port", "0", "--model", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("versacodec: error:") and error.count("\n") == 1


def test_shipped_samples_match_their_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    shipped = sorted(path.name for path in SAMPLES_DIR.glob("*.png"))
    assert shipped == sorted(path.name for path in tmp_path.glob("*.png"))
    for name in shipped:
        assert np.array_equal(np.asarray(Image.open(SAMPLES_DIR / name)), np.asarray(Image.open(tmp_path / name)))


@pytest.mark.shared
@pytest.mark.skipif(shared_dir("models", "face") is None, reason="no ../shared/models (YuNet) here")
def test_real_overlays_find_the_face_in_the_portrait_sample():
    overlays = Overlays()
    if not all(status.available for status in overlays.status):
        pytest.skip("; ".join(status.reason for status in overlays.status if not status.available))
    found = overlays.annotate(Image.open(SAMPLES_DIR / "portrait.png").convert("RGB"))
    assert len(found["faces"]) == 1 and len(found["faces"][0]["landmarks"]) == 5
    assert all(isinstance(box["label"], str) and box["score"] >= 0.3 for box in found["detection"])


# --------------------------------------------------------------------------- hostile requests
def test_cross_site_and_simple_requests_are_refused(client):
    image = png(natural_image(32, 32))
    # A "simple" request needs no CORS preflight, so any page the user visits could send it.
    response = client.post("/api/images", data=image, content_type="text/plain")
    assert response.status_code == 415
    response = client.post("/api/images", data=image, content_type="image/png",
                           headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and "other sites" in response.json["error"]
    response = client.post("/api/images", data=image, content_type="image/png",
                           headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    info = client.post("/api/images", data=image, content_type="image/png",
                       headers={"Origin": "http://localhost"}).json  # the test client's own origin
    response = client.post("/api/jobs", data=f'{{"image": "{info["id"]}", "bpp": 0.5, "decoders": ["direct"]}}',
                           content_type="text/plain")
    assert response.status_code == 415


def test_only_loopback_host_names_are_answered(client, tiny_codec):
    assert client.get("/", headers={"Host": "attacker.example:8000"}).status_code == 403  # DNS rebinding
    assert client.get("/", headers={"Host": "[::1"}).status_code in (400, 403)
    assert client.get("/api/config", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/api/config", headers={"Host": "[::1]:8000"}).status_code == 200
    app = create_app(tiny_codec, max_upload_bytes=UPLOAD_LIMIT, overlays=FixedOverlays(),
                     allowed_hosts=frozenset({"box.lan"}))
    try:
        assert app.test_client().get("/api/config", headers={"Host": "box.lan:8000"}).status_code == 200
    finally:
        app.extensions["versacodec-jobs"].shutdown()


def test_chunked_upload_over_the_limit_is_413(client):
    response = client.post("/api/images", input_stream=io.BytesIO(b"\0" * (UPLOAD_LIMIT + 10)),
                           content_type="image/png", headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    response = client.post("/api/images", input_stream=io.BytesIO(png(natural_image(32, 32))),
                           content_type="image/png", headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 200


def test_an_upload_declaring_a_huge_size_is_refused_before_decoding(tiny_bundle, monkeypatch):
    from versacodec.codec import Codec

    app = create_app(Codec.from_pretrained(tiny_bundle, max_memory=1 << 30), max_upload_bytes=UPLOAD_LIMIT,
                     overlays=FixedOverlays())
    forbid_decoding(monkeypatch)
    try:
        response = app.test_client().post("/api/images", data=declared_png(9000, 9000), content_type="image/png")
    finally:
        app.extensions["versacodec-jobs"].shutdown()
    assert response.status_code == 400 and "memory limit" in response.json["error"]


def test_kept_uploads_are_bounded_in_bytes(tiny_codec):
    app = create_app(tiny_codec, max_upload_bytes=UPLOAD_LIMIT, overlays=FixedOverlays(),
                     kept_upload_bytes=64 * 64 * 3 * 4 + 1)
    client = app.test_client()
    try:
        first = upload(client, natural_image(64, 64))
        second = upload(client, natural_image(64, 64))
        assert client.get(f"/api/images/{first['id']}.png").status_code == 404
        assert client.get(f"/api/images/{second['id']}.png").status_code == 200
    finally:
        app.extensions["versacodec-jobs"].shutdown()


def test_expired_jobs_are_cancelled():
    import threading

    runner = JobRunner(1)
    started, release, finished = threading.Event(), threading.Event(), []

    def slow(report):
        started.set()
        release.wait(30)
        report("the next stage", 1, 2)
        finished.append("slow")

    try:
        first = runner.submit(slow)
        assert started.wait(30)
        queued = runner.submit(lambda report: finished.append("queued"))  # expires the running one
        last = runner.submit(lambda report: finished.append("last"))  # expires the queued one
        assert runner.jobs.get(first) is None and runner.jobs.get(queued) is None
        release.set()
        deadline = time.monotonic() + 30
        while runner.jobs.get(last).snapshot()["state"] != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert finished == ["last"]  # the expired jobs stopped (running) or never started (queued)
    finally:
        release.set()
        runner.shutdown()


def test_recent_is_bounded_in_bytes_but_keeps_the_newest():
    forgotten = []
    recent: Recent[bytes] = Recent(8, max_bytes=100, size=len, forget=forgotten.append)
    a, b = recent.add(b"a" * 60), recent.add(b"b" * 60)
    assert recent.get(a) is None and recent.get(b) == b"b" * 60 and forgotten == [b"a" * 60]
    big = recent.add(b"c" * 500)
    assert recent.get(big) == b"c" * 500 and recent.bytes == 500


def test_the_page_shows_a_loading_state_until_its_config_answers(client):
    """Issue #37: a screenshot taken at load showed no samples and no codecs (empty lists)."""
    page = client.get("/").data.decode()
    for where in ('id="model" class="model">loading', 'id="samples" class="samples"><span class="info loading">',
                  'id="baselines"><span class="info loading">'):
        assert where in page
    script = client.get("/static/app.js").data.decode()
    assert "clearLoading();\n  state.config = config;" in script
