from versacodec.evaluation.cache import ResultStore


def test_records_of_two_versions_of_one_codec_live_side_by_side(tmp_path):
    store = ResultStore(tmp_path)
    store.save("kodak", "versacodec-direct", "model A", 0.05, "kodim01", {"metrics": {"psnr": 23.0}})
    store.save("kodak", "versacodec-direct", "model B", 0.05, "kodim01", {"metrics": {"psnr": 22.0}})

    assert store.load("kodak", "versacodec-direct", "model A", 0.05, "kodim01") == {"metrics": {"psnr": 23.0}}
    assert store.load("kodak", "versacodec-direct", "model B", 0.05, "kodim01") == {"metrics": {"psnr": 22.0}}
    assert store.load("kodak", "versacodec-direct", "model C", 0.05, "kodim01") is None
    assert store.features_path("kodak", "versacodec-direct", "model A", 0.05, "kodim01") != \
        store.features_path("kodak", "versacodec-direct", "model B", 0.05, "kodim01")


def test_a_record_cut_short_reads_as_missing(tmp_path):
    store = ResultStore(tmp_path)
    store.save("kodak", "jpeg", "1", 0.1, "kodim02", {"bpp": 0.1})
    path = store.folder("kodak", "jpeg", "1", 0.1) / "kodim02.json"
    path.write_text('{"bpp": 0.')
    assert store.load("kodak", "jpeg", "1", 0.1, "kodim02") is None
