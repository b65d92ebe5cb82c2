"""`qa bench --quick` runs every section against real processes and reports numbers that add up."""

import json

from qa.cli import main
from qa.config import Config

from conftest import CORPUS, ROOT
from docgen import report_pdf


def test_quick_bench_measures_every_section(qa, corpus_config, tmp_path, capsys):
    report_pdf(tmp_path / "report.pdf")
    code = main(["bench", "--quick", "--index", corpus_config.index_dir, "--corpus", str(CORPUS),
                 "--set", str(ROOT / "evals" / "default.jsonl"), "--report", str(tmp_path),
                 "--uploads", str(tmp_path / "report.pdf")])
    assert code == 0
    printed = capsys.readouterr().out
    r = json.loads((tmp_path / "bench.json").read_text())

    path = r["question_path"]
    assert set(path["stages_ms"]) == {"prepare", "embed", "search", "compose", "read"}
    assert all(d["p50"] > 0 for d in path["stages_ms"].values())
    assert path["non_model_ms"]["p50"] < path["total_ms"]["p50"]
    assert path["floors_ms"]["query_encoder_alone"]["p50"] > 0 and path["floors_ms"]["reader_alone"]["n"] == 8
    assert 0 < path["reader_pairs"]["p50"] <= 2 * Config().reader_candidates  # read as asked, and without its names

    http = r["http"]
    assert http["latency_ms"]["n"] == 8 and http["server_time_ms"]["p50"] <= http["latency_ms"]["p50"]
    assert http["cold_start_to_first_answer_s"] > 0 and http["server_rss_mb"] > 50
    assert http["follow_up_two_readings_ms"]["n"] == 8  # follow-ups from evals/conversations.jsonl, read both ways
    assert r["cold_ask"]["runs"] == 1 and r["cold_ask"]["median_s"] > 0  # --quick: each cold start once

    (ingest,) = r["ingest"]
    assert ingest["documents"] == 5 and ingest["texts"] == len(qa.index.sentences) + len(qa.index.chunks)
    assert ingest["raw_encode_texts_per_s"] > 0 and ingest["ratio_to_raw"] > 0 and ingest["peak_rss_mb"] > 50

    small, large = r["scaling"]
    assert small["vectors"] == 1000 and small["index"] == {"kind": "flat"} and small["recall_at_10"] == 1.0
    assert large["vectors"] == 20000 and large["search_ms"]["p50"] > 0
    (added,) = r["uploads"]
    assert added["pages"] == 4 and 0 < added["read_s"] < added["upload_to_ready_s"] and len(added["all_s"]) == 1
    for line in ("POST /api/ask", "cold `qa ask`", "ingest 5 documents", "search 1,000 × 384 (flat)",
                 "add report.pdf"):
        assert line in printed
