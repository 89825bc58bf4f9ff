"""``gemini-gateway simulator`` starts a real server that answers Gemini requests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from click.testing import CliRunner

from gemini_gateway.cli import main

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_command_serves_gemini_until_stopped() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gemini_gateway",
            "simulator",
            "--port",
            str(port),
            "--stream-chunks",
            "3",
            "--no-validate",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1beta/models/gemini-2.0-flash:streamGenerateContent"
        body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}], "unknown": 1}).encode()
        request = urllib.request.Request(url, data=body, headers={"x-goog-api-key": "k"})
        for _ in range(100):
            try:
                with _NO_PROXY.open(request, timeout=5) as response:
                    events = json.loads(response.read())
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        else:
            raise AssertionError("the simulator never answered")
        assert len(events) == 3  # --stream-chunks, and --no-validate let "unknown" through
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_command_refuses_zero_chunks() -> None:
    result = CliRunner().invoke(main, ["simulator", "--stream-chunks", "0"])
    assert result.exit_code != 0
    assert "--stream-chunks must be at least 1" in result.output
