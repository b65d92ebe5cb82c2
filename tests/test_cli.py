import json
import shutil

import pytest

from qa.cli import main

from conftest import CORPUS


@pytest.fixture
def dirs(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / "000_203956cee7abdc96.txt", corpus)
    shutil.copy(CORPUS / "004_ce580bb8f3b02914.txt", corpus)
    shutil.copy(CORPUS / "004_ce580bb8f3b02914.meta.json", corpus)
    (corpus / "broken.txt").write_bytes(b"\x00\xff\x00")
    return corpus, tmp_path / "index"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_ask_and_search(dirs, capsys):
    corpus, index = dirs
    code, out, err = run(capsys, "ingest", "--corpus", str(corpus), "--index", str(index))
    assert code == 0
    assert "Indexed 2 documents (2 embedded, 0 unchanged, 0 removed)" in out and "1 files skipped" in out
    assert "skipped broken.txt: binary file" in err

    code, out, _ = run(capsys, "ask", "How many founding partners does Liverpool Health Partners have?",
                       "--json", "--index", str(index))
    assert code == 0
    answer = json.loads(out)
    assert set(answer) >= {"question", "answer", "abstained", "confidence", "sentences", "citations", "query"}
    assert "nine" in answer["sentences"][0]["text"] and answer["citations"][0]["doc_id"] == "000_203956cee7abdc96"
    assert answer["answer"].endswith("[1]")

    code, out, _ = run(capsys, "ask", "Who is the LAHP chair elect?", "--index", str(index))
    assert code == 0 and "Phil Wood" in out and "2024-01-20" in out  # the source's date shows with its citation

    code, out, _ = run(capsys, "ask", "What is the capital of France?", "--json", "--index", str(index))
    assert json.loads(out)["abstained"] is True

    code, out, _ = run(capsys, "search", "Investment Zone", "-k", "2", "--json", "--index", str(index))
    passages = json.loads(out)
    assert code == 0 and len(passages) == 2 and passages[0]["doc_id"] == "004_ce580bb8f3b02914"

    code, out, _ = run(capsys, "ingest", "--corpus", str(corpus), "--index", str(index))
    assert "(0 embedded, 2 unchanged, 0 removed)" in out


def test_errors_are_one_line_with_non_zero_exit(dirs, capsys, tmp_path):
    corpus, index = dirs
    code, out, err = run(capsys, "ask", "anything", "--index", str(index))
    assert code == 2 and err.startswith("error: No index in") and "qa ingest" in err and err.count("\n") == 1

    code, _, err = run(capsys, "ingest", "--corpus", str(tmp_path / "missing"), "--index", str(index))
    assert code == 2 and "does not exist" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "ingest", "--corpus", str(empty), "--index", str(index))
    assert code == 2 and "No readable" in err and "Traceback" not in err

    run(capsys, "ingest", "--corpus", str(corpus), "--index", str(index))
    config = tmp_path / "qa.toml"
    config.write_text("chunk_tokens = 90\n")
    code, _, err = run(capsys, "--config", str(config), "ask", "anything", "--index", str(index))
    assert code == 2 and "Re-run `qa ingest`" in err

    code, _, err = run(capsys, "ask", "   ", "--index", str(index))
    assert code == 2 and "empty" in err


def test_python_dash_m_qa_is_the_qa_command_and_says_its_version():
    import subprocess
    import sys
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", "qa", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"qa {version('qa')}"
    done = subprocess.run([sys.executable, "-m", "qa", "ask"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "question" in done.stderr  # argparse: the question is missing


def test_fit_collects_readings_through_the_product_then_fits_again_from_them(tmp_path, capsys):
    from pathlib import Path

    from qa.lab.squad import SPLITS

    tiny = json.loads((Path(__file__).parent / "data" / "squad-tiny.json").read_text())
    # Two articles in each split (titles the splits are fixed on), each half asked of the other.
    data = [dict(article, title=title) for split in ("fit", "select", "report")
            for article, title in zip(tiny["data"], SPLITS[split])]
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"data": data}))
    report = tmp_path / "report"
    args = ["fit", "--squad", str(squad), "--report", str(report), "--off-corpus", "4", "--candidates", "4"]
    assert main(args) == 0
    first = capsys.readouterr().out
    for split in ("fit", "select", "report"):
        readings = [json.loads(line) for line in (report / f"readings-{split}.jsonl").read_text().splitlines()]
        kinds = {r["kind"] for r in readings}
        assert {"yes", "off"} <= kinds and all(len(r["texts"]) == len(r["logits"]) for r in readings)
        assert first.count(f"\n{split}: ") + first.startswith(f"{split}: ") == 1
    assert "ablation (report split" in first and "Wrote" not in first  # written only when asked
    assert json.loads((report / "fit-report.json").read_text())["candidates"]["chosen"] == 4
    # Fitting again from the saved readings asks nothing and gives the same figures.
    assert main(args + ["--reuse"]) == 0
    assert capsys.readouterr().out == first


def test_output_cut_short_by_its_reader_ends_quietly(qa, corpus_config):  # qa: the index is built
    """`qa ask … | head -1`: the pipe closes before the answer is written; that is no error
    of the command's (it printed a BrokenPipeError traceback)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "ask", "Who chairs the LAHP?", "--index",
                             str(corpus_config.index_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # gone before the answer is printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err and "BrokenPipe" not in err
