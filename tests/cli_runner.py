"""Running `sipas-bot` from tests: in-process through the console entry point `main()` (fast,
the default), or as the installed script in a process of its own (for the few tests that
need a real process: a server that must not start, stdin of a real terminal program)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

from bot.cli import main

SCRIPT = Path(sys.executable).with_name("sipas-bot")


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`sipas-bot ARGS` through `main()` in this process, with the environment, the working
    folder, stdin and argv set as a process would see them and put back afterwards."""
    saved_env = dict(os.environ)
    saved_cwd = Path.cwd()
    saved = (sys.argv, sys.stdin)
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env or {})
    for name in unset:
        os.environ.pop(name, None)
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = ["sipas-bot", *args]
        sys.stdin = io.StringIO(input or "")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, sys.stdin = saved
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["sipas-bot", *args], code, out.getvalue(), err.getvalue())


def run_installed_cli(
    *args: str,
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
    cwd: Path | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """The real `sipas-bot` console script, in the (cleaned) test environment plus `env`."""
    full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    for name in unset:
        full_env.pop(name, None)
    return subprocess.run(
        [str(SCRIPT), *args],
        env=full_env,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 2 and exactly one `sipas-bot: error:` line naming every word; no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sipas-bot: error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert result.returncode == 2, (result.returncode, result.stderr)
    return lines[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
