"""The package as a Python user installs it: `pip wheel .`, installed into a fresh virtual
environment, run from another folder, must index documents and serve the chat page, the
OpenAPI document and answers, from the files inside the wheel alone."""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from qa.config import Config

from conftest import CORPUS, ROOT, post_json, running_server


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the built wheel; its dependencies (torch and the rest, large
    and already installed here) are borrowed from this environment through a .pth file, so
    the product's own files come from the wheel and nothing else."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT),
                    "-w", str(work / "dist")], check=True, capture_output=True, cwd=work, timeout=300)
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' scratch folder in the source tree
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    wheel = next((work / "dist").glob("qa-*.whl"))
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    fresh_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    Path(fresh_site, "borrowed-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def test_the_wheel_carries_the_page_the_reader_and_the_api_document(installed):
    where = subprocess.run([installed, "-c", "import qa.read, qa.server; print(qa.read.__file__); "
                            "print(qa.read.TRAINED_FOLDER); print(qa.server.WEB_DIR); print(qa.server.OPENAPI)"],
                           capture_output=True, text=True, check=True, cwd=installed.parent).stdout.split()
    venv = installed.parent.parent
    assert all(Path(p).is_relative_to(venv) for p in where), where
    assert (Path(where[1]) / "model.onnx").is_file() and (Path(where[2]) / "app.js").is_file()


def test_an_installed_wheel_indexes_and_serves_the_chat_page(installed, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for doc in sorted(CORPUS.glob("000_*")):
        shutil.copy(doc, corpus / doc.name)
    done = subprocess.run([installed.parent / "qa", "ingest", "--corpus", str(corpus), "--index", str(tmp_path / "index")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    config = Config(corpus_dir=str(corpus), index_dir=str(tmp_path / "index"))
    with running_server(config, tmp_path, python=str(installed)) as (base, _):
        with urllib.request.urlopen(base + "/") as page:
            assert "<script" in page.read().decode()
        with urllib.request.urlopen(base + "/web/app.js") as script:
            assert script.status == 200 and b"function" in script.read()
        with urllib.request.urlopen(base + "/api/openapi.json") as spec:
            assert json.load(spec)["paths"]["/api/ask"]
        answer = post_json(base + "/api/ask", {"question": "How many founding partners does Liverpool Health Partners have?"})
        assert "nine" in answer["sentences"][0]["text"]
