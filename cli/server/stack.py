"""The processes `meshline up` runs: started, kept running (one that dies is started again,
with backoff, saying so), and stopped in reverse order.

The decisions (when to start again, what to say) are meshline.process.restarts'; this is the
shell that polls the processes and starts them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from meshline.process.children import exit_reason, guarded, write_marker
from meshline.process.restarts import Exit, backoff_s, plan_restart

# The arguments of `python -m cli ...`, worked out again at every start (a flag may only be
# right for the first one).
Command = Callable[[], list[str]]


@dataclass
class Child:
    name: str
    command: Command
    env: dict[str, str]  # added to `up`'s environment (a secret goes here, never in argv)
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float  # monotonic
    failures: int = 0  # short runs in a row (meshline.process.restarts)
    restart_at: float | None = None  # set while it is dead and waits to be started again


@dataclass
class Stack:
    """The processes `up` started, stopped in reverse order."""

    state_dir: Path
    console: Console
    clock: Callable[[], float] = time.monotonic
    children: list[Child] = field(default_factory=list)

    def start(
        self, name: str, args: list[str] | Command, env: dict[str, str] | None = None
    ) -> Child:
        """`args`: fixed, or a function giving them at each start."""
        command: Command = args if callable(args) else (lambda: list(args))
        log_path = self.state_dir / "logs" / f"{name}.log"
        child_env = dict(env or {})
        process = self._spawn(command(), child_env, log_path)
        child = Child(name, command, child_env, log_path, process, self.clock())
        self.children.append(child)
        return child

    def _spawn(
        self, args: list[str], env: dict[str, str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        write_marker(log_path, ["meshline", *args])  # the exit reason is read from this run on
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                guarded([sys.executable, "-m", "cli", *args]),  # dies with `up`
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
                start_new_session=True,  # Ctrl-C reaches only `up`, which stops children in order
            )

    def dead(self) -> Child | None:
        """A child that is not running (while `up` starts, one that dies fails the start)."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def tend(self) -> None:
        """One supervision pass: note each child that died (and when it starts again), and start
        again those whose wait is over."""
        for child in self.children:
            restart_at = child.restart_at
            if restart_at is None:
                returncode = child.process.poll()
                if returncode is None:
                    continue
                ended = Exit(
                    returncode, self.clock() - child.started_at, exit_reason(child.log_path)
                )
                plan = plan_restart(child.name, child.failures, ended)
                child.failures = plan.failures
                restart_at = child.restart_at = self.clock() + plan.delay_s
                self._say(plan.message, "yellow")
            if self.clock() >= restart_at:
                self._restart(child)

    def _restart(self, child: Child) -> None:
        try:
            child.process = self._spawn(child.command(), child.env, child.log_path)
        except OSError as exc:
            child.failures += 1
            delay = backoff_s(child.failures)
            child.restart_at = self.clock() + delay
            self._say(f"{child.name} could not be started: {exc}; trying again in {delay:g}s")
            return
        child.started_at = self.clock()
        child.restart_at = None
        self._say(f"started {child.name} again (pid {child.process.pid})", "green")

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
            self.console.print(f"stopped {child.name}")

    def _say(self, text: str, style: str = "red") -> None:
        # A log line may hold anything: no markup, one line whatever the terminal's width.
        self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
