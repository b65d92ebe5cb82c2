"""Stateless replicas: several `qa serve` processes answering from one search engine, behind
HAProxy (Debian's package). Used by the benchmark (`qa bench --store`) and the tests, and a
template for a deployment: each replica holds only the models, so any of them can be
stopped, started or added while the others answer.

The balancer checks each replica's /api/health every `CHECK_MS` and takes one that fails
twice running out (once would take out a busy replica whose check waited behind its
questions, and with it, while another restarts, every replica); a request whose replica
goes away before answering (connection refused, or closed with no response) is sent again
to another (`retry-on`, `option redispatch`). A stopping replica says so on /api/health
for `drain_seconds` (2 s), well past two checks.
Asking is safe to repeat; adding and removing documents are journalled by the replica
that took them, and repeating one is answered "already added" or "not found".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ..types import QAError

CHECK_MS = 200
HAPROXY_CONFIG = """global
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout check 5s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
frontend qa
    bind {host}:{port}
    default_backend replicas
backend replicas
    balance leastconn
    option httpchk GET /api/health
    http-check expect status 200
    default-server inter {check_ms}ms fall 2 rise 1
{servers}
"""


def haproxy_config(replicas: list[str], host: str, port: int) -> str:
    """HAProxy's configuration for these replica base URLs ("http://127.0.0.1:8001")."""
    servers = "\n".join(f"    server r{n} {url.split('://', 1)[1]} check" for n, url in enumerate(replicas, 1))
    return HAPROXY_CONFIG.format(host=host, port=port, check_ms=CHECK_MS, servers=servers)


def wait_healthy(base: str, proc: subprocess.Popen | None = None, seconds: float = 120, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2) as r:
                if json.load(r).get("status") == "ok":
                    return
        except (OSError, ValueError):
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            if proc is not None and proc.poll() is None:
                proc.kill()
            tail = log.read_text(errors="replace")[-2000:] if log and log.is_file() else ""
            raise QAError(f"{base} did not become healthy. {tail}")
        time.sleep(0.1)


@contextlib.contextmanager
def replica(port: int, folder: Path, env: dict[str, str], host: str = "127.0.0.1", python: str = sys.executable,
            pin: int | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`qa serve` on a port until the block ends (the store and the rest from `env`, QA_*);
    `pin`: the one core it may run on."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"replica-{port}.log", "a") as log:
        pinned = ["taskset", "-c", str(pin)] if pin is not None else []
        proc = subprocess.Popen([*pinned, python, "-m", "qa.cli", "serve", "--host", host, "--port", str(port)],
                                cwd=folder, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        base = f"http://{host}:{port}"
        try:
            wait_healthy(base, proc, log=folder / f"replica-{port}.log")
            yield base, proc
        finally:
            stop(proc)


@contextlib.contextmanager
def balancer(replicas: list[str], port: int, folder: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """HAProxy in front of the replicas until the block ends: gives its base URL."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).is_file():
        raise QAError("HAProxy is not installed. Install Debian's package: apt-get install haproxy.")
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "haproxy.cfg"
    cfg.write_text(haproxy_config(replicas, host, port))
    with open(folder / "haproxy.log", "a") as log:
        proc = subprocess.Popen([binary, "-f", str(cfg), "-db"], stdout=log, stderr=subprocess.STDOUT)
        base = f"http://{host}:{port}"
        try:
            wait_healthy(base, proc, seconds=30, log=folder / "haproxy.log")
            yield base
        finally:
            stop(proc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
