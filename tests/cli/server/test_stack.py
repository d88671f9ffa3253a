"""`up`'s process shell with a real crash-looping process (`meshline controlplane` with a bad
flag exits 1 at once): each death is said with its reason, and it is started again after the
backoff, the clock of the decision being a hand-moved one (the processes are real)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from cli.server.stack import Stack

BAD_FLAG_ERROR = "error: --listen 'nonsense': expected host:port"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_crash_loop_is_started_again_with_backoff_saying_why(tmp_path: Path) -> None:
    out = io.StringIO()
    clock = Clock()
    stack = Stack(tmp_path, Console(file=out, width=80), clock=clock)
    starts: list[int] = []

    def command() -> list[str]:
        starts.append(len(starts))
        return ["controlplane", "--listen", "nonsense"]

    child = stack.start("broken", command)
    try:
        first = child.process
        first.wait(timeout=60)
        clock.now += 0.5
        stack.tend()  # its first death in a while: started again at once
        assert child.process is not first and len(starts) == 2
        lines = out.getvalue().splitlines()
        assert lines[0] == (
            f"broken exited with code 1 after 0.5s (last log line: {BAD_FLAG_ERROR}, e.g. "
            "127.0.0.1:7070); starting it again now"
        ), "one line however narrow the terminal"
        assert lines[1] == f"started broken again (pid {child.process.pid})"

        second = child.process
        second.wait(timeout=60)
        clock.now += 0.5
        stack.tend()  # dead again after a short run: waits 1 s
        assert child.process is second and len(starts) == 2
        assert "exited with code 1 after 0.5s, 2nd short run in a row" in out.getvalue()
        assert "starting it again in 1s (backing off, at most 30s)" in out.getvalue()
        clock.now += 0.9
        stack.tend()
        assert child.process is second, "started again before its backoff was over"
        clock.now += 0.1
        stack.tend()
        assert child.process is not second and len(starts) == 3
        child.process.wait(timeout=60)
        stack.tend()
        assert "3rd short run in a row" in out.getvalue()
        assert "starting it again in 2s" in out.getvalue()
        log = (tmp_path / "logs" / "broken.log").read_text()
        assert log.count(BAD_FLAG_ERROR) == 3, "every run's output goes to the one log"
    finally:
        stack.stop()
    assert child.process.poll() is not None
    assert out.getvalue().endswith("stopped broken\n")
