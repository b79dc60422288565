"""Export of 100k and 1M surveys to CSV and XLSX: wall time and peak memory of the real
`sipas-bot export` process, on PostgreSQL.

    python -m bench.export_large [--dataset 2000000] [--sizes 100000,1000000]
                                 [--formats csv,xlsx] [--runs 3]

The surveys are the 2M dataset of bench/dataset.py (built once, then kept): `--from` is
chosen so that the export holds about N surveys (completed and partial ones, as the command
exports). `sipas-bot export --format F --out FILE --from DAY` runs as a child process; its
peak RSS is the kernel's (`wait4` ru_maxrss, i.e. VmHWM), and VmRSS is sampled every 0.2 s
to show whether memory grows while rows stream. Reported: median and min–max of the runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import dataset
from bench.common import (
    QUICK,
    SIPAS_BOT,
    fmt_spread,
    log,
    machine_info,
    postgres_available,
    service_env,
    spread,
    write_result,
)


def _vm_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_export(url: str, fmt: str, first_day: str, out: Path) -> dict[str, Any]:
    """One `sipas-bot export` run: seconds, peak RSS (MiB), the RSS samples, surveys written."""
    env = service_env(url, LOG_LEVEL="WARNING")
    command = [SIPAS_BOT, "export", "--format", fmt, "--out", str(out), "--from", first_day]
    t0 = time.monotonic()
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            samples.append((round(time.monotonic() - t0, 1), _vm_rss_kib(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr_lines: list[str] = []
    reader = threading.Thread(
        target=lambda: stderr_lines.extend(
            line.decode("utf-8", "replace")
            for line in iter(process.stderr.readline, b"")  # type: ignore[union-attr]
        ),
        daemon=True,
    )
    reader.start()
    try:
        _pid, status, usage = os.wait4(process.pid, 0)
    except BaseException:
        os.killpg(process.pid, 9)
        raise
    seconds = time.monotonic() - t0
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    reader.join(timeout=5)
    if process.returncode != 0:
        raise RuntimeError(f"export exited with {process.returncode}: {''.join(stderr_lines)}")
    written = next((int(line.split()[1]) for line in stderr_lines if line.startswith("wrote ")), -1)
    rss = [kib for _, kib in samples if kib]
    return {
        "seconds": seconds,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "rss_at_quarter_mib": rss[len(rss) // 4] / 1024 if rss else None,
        "rss_at_three_quarters_mib": rss[3 * len(rss) // 4] / 1024 if rss else None,
        "surveys": written,
        "file_mib": out.stat().st_size / 1024 / 1024,
        "progress_lines": sum(1 for line in stderr_lines if not line.startswith("wrote ")),
    }


def first_day_for(data: dataset.Dataset, surveys: int) -> str:
    """The first local day such that about `surveys` surveys were started from it to the end."""
    stored = data.info["responses"]
    exported_share = 0.94  # completed and partial (bench/dataset.py)
    days = 365 * surveys / (stored * exported_share)
    end = dataset.NOW + timedelta(hours=7)  # Asia/Ho_Chi_Minh, the service's TIMEZONE
    return (end - timedelta(days=days)).date().isoformat()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=int, default=20000 if QUICK else 2_000_000)
    parser.add_argument("--sizes", default="10000" if QUICK else "100000,1000000")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--runs", type=int, default=1 if QUICK else 3)
    parser.add_argument("--result-name", default="export", help="bench/results/<name>-*.json")
    args = parser.parse_args()
    if not postgres_available():
        log("PostgreSQL does not answer on BENCH_PG_URL: skipped")
        return 0
    machine = machine_info()
    data = dataset.ensure(args.dataset)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sipas-bench-export-") as tmp:
        for size in [int(s) for s in args.sizes.split(",") if s]:
            day = first_day_for(data, size)
            for fmt in args.formats.split(","):
                runs = []
                for n in range(args.runs):
                    out = Path(tmp) / f"export-{size}-{n}.{fmt}"
                    runs.append(run_export(data.url, fmt, day, out))
                    out.unlink()
                    log(
                        f"export {fmt} from {day}: {runs[-1]['surveys']:,} surveys in "
                        f"{runs[-1]['seconds']:.1f} s, peak RSS {runs[-1]['peak_rss_mib']:.0f} MiB"
                    )
                results.append(
                    {
                        "format": fmt,
                        "from": day,
                        "surveys": runs[-1]["surveys"],
                        "seconds": spread([r["seconds"] for r in runs]),
                        "surveys_per_s": spread([r["surveys"] / r["seconds"] for r in runs]),
                        "peak_rss_mib": spread([r["peak_rss_mib"] for r in runs]),
                        "rss_at_quarter_mib": runs[-1]["rss_at_quarter_mib"],
                        "rss_at_three_quarters_mib": runs[-1]["rss_at_three_quarters_mib"],
                        "file_mib": round(runs[-1]["file_mib"], 1),
                        "progress_lines": runs[-1]["progress_lines"],
                        "runs": runs,
                    }
                )
    lines = [
        "| format | surveys | time, s | surveys/s | peak RSS, MiB | RSS at 1/4 and 3/4 of the "
        "run, MiB | file, MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        quarter, three = r["rss_at_quarter_mib"], r["rss_at_three_quarters_mib"]
        lines.append(
            f"| {r['format']} | {r['surveys']:,} | {fmt_spread(r['seconds'], '', 1)} | "
            f"{fmt_spread(r['surveys_per_s'])} | {fmt_spread(r['peak_rss_mib'])} | "
            f"{quarter or 0:.0f} / {three or 0:.0f} | {r['file_mib']} |"
        )
    summary = "\n".join(lines)
    print(summary)
    path = write_result(
        args.result_name,
        {"machine": machine, "dataset": data.info, "results": results, "table": summary},
    )
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
