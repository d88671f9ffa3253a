"""`python -m meshline.process.orphan_guard PARENT_PID -- PROGRAM ARGS...`: become PROGRAM, but die
with the agent.

The agent is multithreaded (gRPC, torch), so its children must be started without running any
Python between fork and exec: gRPC skips its fork handlers then, and a child that runs code in
that state can crash (SIGSEGV, or an abort on "epoll_wait error: Bad file descriptor") before
it ever execs. So the child asks for SIGTERM on its parent's death itself, here, in a fresh
interpreter, and then execs the program (the request survives exec). A parent that died in
between is noticed by its pid having changed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(
            "usage: python -m meshline.process.orphan_guard PARENT_PID -- PROGRAM [ARGS...]",
            file=sys.stderr,
        )
        return 2
    parent = int(argv[0])
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the agent's own shutdown still stops its children
    if os.getppid() != parent:
        return 1  # the agent is already gone
    program = argv[2:]
    os.execvp(program[0], program)
    return 127  # unreachable: execvp raises on failure


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
