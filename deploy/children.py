"""Child processes of the test harness and the benchmarks: spawned, killed, stopped, logged.

Both run the real `fangpin worker|serve` commands as separate processes, so a SIGKILL is a
crash and not a cancelled task; this is the one place that starts and reaps them.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `python ARGS` from the repository root, output appended to log."""
    out = open(log, "ab")  # noqa: SIM115 - kept open for the child
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=out)


class Children:
    """Named child processes whose logs are `<var>/<name>.log`."""

    # What check_alive raises: tests want an assertion failure, the benchmarks an error.
    failure: type[Exception] = RuntimeError

    def __init__(self, var: Path) -> None:
        self.var = var
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn_cli(self, name: str, args: list[str], env: dict[str, str]) -> None:
        """Start `fangpin ARGS` as child `name`."""
        self.procs[name] = spawn(["-m", "deploy.cli", *args], self.var / f"{name}.log", env=env)

    def kill(self, name: str) -> None:
        """SIGKILL a child: no shutdown code runs, as in a crash."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        """SIGTERM every child and wait for it (SIGKILL after 20 s)."""
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()

    def logs(self, tail: int = 3000) -> str:
        """Return the end of every child's log, for failure messages."""
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-tail:]
            for p in sorted(self.var.glob("*.log"))
        )

    def check_alive(self) -> None:
        """Raise if a child exited on its own (a crash nobody caused on purpose)."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise self.failure(f"{name} exited ({proc.returncode})\n{self.logs()}")
