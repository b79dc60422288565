"""What the benchmarks share: the machine, processes started and always stopped, throw-away
databases (a SQLite file, or a PostgreSQL schema dropped afterwards), CPU accounting from
/proc, and summaries (median and min–max of several runs).

Every process a benchmark starts is started in its own session (process group) through
`Processes`, which stops the whole group on exit, also on an exception, SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SIPAS_BOT = str(BIN / "sipas-bot")
GUNICORN = str(BIN / "gunicorn")
RESULTS = ROOT / "bench" / "results"
EXAMPLE_UNITS = ROOT / "examples" / "units.yaml"

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")

# The app and OA the load generators sign for (any values do: the server is given the same).
APP_ID = "360846524940903967"
OA_ID = "388613280878808645"
OA_SECRET = "bench-oa-secret-key"
PEPPER = "bench-privacy-pepper-0123"
APP_NAME = "sipas-bench"  # PostgreSQL application_name of the service's connections

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICE_ENV_PREFIXES = (
    "ZALO_",
    "PRIVACY_",
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "QR_URL_TEMPLATE",
    "TIMEZONE",
    "SURVEY_",
    "OUTBOX_",
    "LOG_LEVEL",
    "FLASK_",
    "SMTP_",
    "DIGEST_",
    "ALERT_",
    "REPORT_",
    "CONSOLE_",
    "DIRECTORY_",
    "WEBHOOK_",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the machine ----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """nproc, memory, CPU model, load average and versions: what a reader needs to compare."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu_model": model,
        "loadavg": load_average(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    with contextlib.suppress(Exception):
        info["postgresql"] = _pg_scalar("SHOW server_version")
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        info["wrk"] = (out.stdout or out.stderr).splitlines()[0].strip()
    return info


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- processes ------------------------------------------------------------------------------


class Processes:
    """Starts processes in their own process group; stops every one of them on exit."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Processes:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._previous[signum] = signal.signal(signum, _exit_on_signal)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def spawn(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        log_path: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        out: Any = subprocess.DEVNULL
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(log_path, "ab")  # noqa: SIM115 - closed when the child has it
        try:
            process = subprocess.Popen(
                list(command),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log_path is not None:
                out.close()
        self.started.append((name, process))
        return process

    def stop(self, process: subprocess.Popen[bytes], *, timeout: float = 20.0) -> None:
        """SIGTERM to the process group, SIGKILL after `timeout` seconds."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Children that outlived their parent (e.g. gunicorn workers) are in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self.started = [(n, p) for n, p in self.started if p is not process]

    def stop_all(self) -> None:
        for _name, process in reversed(list(self.started)):
            self.stop(process)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(
    url: str,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    timeout: float = 60.0,
) -> None:
    """Wait until GET `url` answers (any status); fail early if `process` has exited."""
    host, _, rest = url.removeprefix("http://").partition("/")
    hostname, _, port = host.partition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}{tail(log_path)}")
        try:
            connection = http.client.HTTPConnection(hostname, int(port or 80), timeout=2)
            connection.request("GET", "/" + rest)
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s{tail(log_path)}")


def tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text("utf-8", errors="replace").splitlines()[-lines:]
    return "\n--- " + str(path) + " (last lines) ---\n" + "\n".join(text)


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The process environment for a sipas-bot process: no setting leaks in from this shell,
    no .env is read, and the OA is the one the load generators sign for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SERVICE_ENV_PREFIXES)}
    env.update(
        {
            "FLASK_SKIP_DOTENV": "1",
            "DATABASE_URL": database_url,
            "ZALO_APP_ID": APP_ID,
            "ZALO_OA_SECRET_KEY": OA_SECRET,
            "ZALO_SANDBOX": "1",
            "PRIVACY_PEPPER": PEPPER,
            # `serve` refuses to start without it (the console's cookies)
            "CONSOLE_SECRET_KEY": "bench-console-secret-key-of-32-characters-or-more",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "0",
        }
    )
    env.update(extra)
    return env


# --- databases ------------------------------------------------------------------------------


def _pg_admin_engine() -> Any:
    from sqlalchemy import create_engine

    return create_engine(PG_URL, pool_size=1, max_overflow=0)


def _pg_scalar(sql: str) -> Any:
    from sqlalchemy import text

    engine = _pg_admin_engine()
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def postgres_available() -> bool:
    try:
        _pg_scalar("SELECT 1")
    except Exception:
        return False
    return True


@dataclass
class BenchDatabase:
    """A fresh, migrated database holding examples/units.yaml; removed on exit."""

    backend: str  # sqlite | postgresql
    # called first on exit: stop the processes using the database before it is dropped
    on_exit: Callable[[], None] | None = None
    url: str = ""
    schema: str = ""
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def __enter__(self) -> BenchDatabase:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        if self.backend == "sqlite":
            self._tmp = tempfile.TemporaryDirectory(prefix="sipas-bench-db-")
            self.url = f"sqlite:///{self._tmp.name}/bench.db"
        elif self.backend == "postgresql":
            self.schema = f"bench_{secrets.token_hex(5)}"
            admin = _pg_admin_engine()
            try:
                with admin.begin() as connection:
                    connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            finally:
                admin.dispose()
            url = make_url(PG_URL).update_query_dict(
                {"options": f"-csearch_path={self.schema}", "application_name": APP_NAME}
            )
            self.url = url.render_as_string(hide_password=False)
        else:
            raise ValueError(f"unknown backend {self.backend!r}")
        try:
            self._prepare()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _prepare(self) -> None:
        from bot.units import read_units_file
        from storage import migrate
        from storage import repositories as repo
        from storage.db import make_engine, make_session_factory

        engine = make_engine(self.url)
        try:
            migrate.upgrade(engine)
            with make_session_factory(engine).begin() as session:
                repo.upsert_units(
                    session, read_units_file(EXAMPLE_UNITS), now=dt.datetime.now(dt.UTC)
                )
        finally:
            engine.dispose()

    def engine(self) -> Any:
        from storage.db import make_engine

        return make_engine(self.url)

    def __exit__(self, *_exc: object) -> None:
        from sqlalchemy import text

        if self.on_exit is not None:
            self.on_exit()
        if self.backend == "postgresql" and self.schema:
            admin = _pg_admin_engine()
            try:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            finally:
                admin.dispose()
            self.schema = ""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def count_rows(url: str, queries: Mapping[str, str]) -> dict[str, Any]:
    from sqlalchemy import text

    from storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {name: connection.execute(text(sql)).scalar() for name, sql in queries.items()}
    finally:
        engine.dispose()


def pg_backend_pids(application_name: str = APP_NAME) -> list[int]:
    from sqlalchemy import text

    engine = _pg_admin_engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"),
                {"n": application_name},
            )
            return [int(r[0]) for r in rows]
    finally:
        engine.dispose()


# --- CPU accounting -------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _all_stats() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, comm) for every process."""
    result: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                raw = handle.read()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        ppid = int(raw.rsplit(")", 1)[1].split()[1])
        result[int(entry)] = (ppid, comm)
    return result


def process_tree(root: int) -> list[int]:
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _comm) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def pids_named(name: str) -> list[int]:
    return [pid for pid, (_ppid, comm) in _all_stats().items() if comm == name]


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return float(total - idle), float(total)


class CpuMeter:
    """CPU used by groups of processes over a window, in cores (1.0 = one core busy)."""

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}
        self._machine: tuple[float, float] = (0.0, 0.0)
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._machine = machine_cpu()
        self._start = {
            name: {pid: proc_cpu_seconds(pid) for pid in pids()}
            for name, pids in self.groups.items()
        }

    def stop(self, extra: Mapping[str, Iterable[int]] | None = None) -> dict[str, float]:
        """Cores used per group; processes first seen now count from 0 (they started within
        the window, or their CPU before it is unknown and small)."""
        wall = max(time.monotonic() - self._t0, 1e-6)
        busy0, total0 = self._machine
        busy1, total1 = machine_cpu()
        ncpu = os.cpu_count() or 1
        result: dict[str, float] = {}
        pids_by_group = {name: list(pids()) for name, pids in self.groups.items()}
        for name, pids in (extra or {}).items():
            pids_by_group[name] = list(pids)
        for name, pids in pids_by_group.items():
            before = self._start.get(name, {})
            used = sum(max(proc_cpu_seconds(pid) - before.get(pid, 0.0), 0.0) for pid in pids)
            result[name] = round(used / wall, 3)
        result["machine_busy"] = round((busy1 - busy0) / max(total1 - total0, 1) * ncpu, 3)
        result["wall_s"] = round(wall, 2)
        return result


def top_snapshot() -> str:
    """One `top -b -n 1` listing (the busiest processes), for the record."""
    if not shutil.which("top"):
        return ""
    out = subprocess.run(
        ["top", "-b", "-n", "1", "-o", "%CPU", "-w", "200"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "\n".join(out.stdout.splitlines()[:22])


# --- summaries ------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and min–max of several runs."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "runs": 0}
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "runs": len(values),
    }


def fmt_spread(s: Mapping[str, float], unit: str = "", digits: int = 0) -> str:
    if not s or not s.get("runs"):
        return "n/a"
    f = f"{{:,.{digits}f}}"
    median, low, high = (f.format(s[k]) for k in ("median", "min", "max"))
    return f"{median}{unit} ({low}–{high})"


def write_result(name: str, data: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
    latest = RESULTS / f"{name}-latest.json"
    latest.write_text(path.read_text("utf-8"), "utf-8")
    return path


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A working directory for the service processes (no .env is there to be read)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)
