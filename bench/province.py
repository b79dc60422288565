"""A province for the benchmarks (issue 17): Official Accounts, each its own Zalo app with its
own secrets and first token pair (from the environment, `env:` references in the units
file), and its wards (units) with their counters. Used by bench/province_day.py and
`bench.ingest --oas`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Ward:
    code: str
    name: str
    counters: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Oa:
    number: int
    oa_id: str
    app_id: str
    oa_secret_key: str
    access_token: str
    refresh_token: str
    wards: tuple[Ward, ...]

    @property
    def counters(self) -> tuple[str, ...]:
        return tuple(code for ward in self.wards for code in ward.counters)


def province(n_oas: int, *, units_per_oa: int = 1, counters_per_unit: int = 10) -> list[Oa]:
    """`n_oas` OAs with `units_per_oa` wards each. One ward per OA: ward W001 of OA 1, its
    counters W001Q01…; several: wards W001U01…, counters W001U01Q01…"""

    def ward(k: int, u: int) -> Ward:
        code = f"W{k:03d}" if units_per_oa == 1 else f"W{k:03d}U{u:02d}"
        name = f"UBND phường {k:03d}" if units_per_oa == 1 else f"UBND phường {k:03d}-{u:02d}"
        counters = tuple(f"{code}Q{c:02d}" for c in range(1, counters_per_unit + 1))
        return Ward(code, name, counters)

    return [
        Oa(
            number=k,
            oa_id=str(3_100_000_000_000_000_000 + k),
            app_id=str(3_200_000_000_000_000_000 + k),
            oa_secret_key=f"province-oa-secret-{k:03d}",
            access_token=f"access-oa{k:03d}-0",
            refresh_token=f"refresh-oa{k:03d}-0",
            wards=tuple(ward(k, u) for u in range(1, units_per_oa + 1)),
        )
        for k in range(1, n_oas + 1)
    ]


def units_yaml(oas: list[Oa], *, with_oas: bool) -> str:
    """The units file: with `oas` for the service; without, every ward the environment's
    OA's (for computing the expected texts in the sandbox)."""
    lines = ["oas:"] if with_oas else []
    for oa in oas if with_oas else []:
        k = oa.number
        lines += [
            f'  - id: "{oa.oa_id}"',
            f"    name: UBND phường {k:03d}",
            f'    app_id: "{oa.app_id}"',
            f"    app_secret: env:OA{k:03d}_APP_SECRET",
            f"    oa_secret_key: env:OA{k:03d}_OA_SECRET_KEY",
            f"    access_token: env:OA{k:03d}_ACCESS_TOKEN",
            f"    refresh_token: env:OA{k:03d}_REFRESH_TOKEN",
        ]
    lines.append("units:")
    for oa in oas:
        for ward in oa.wards:
            lines.append(f"  - code: {ward.code}")
            if with_oas:
                lines.append(f'    oa: "{oa.oa_id}"')
            lines += [f"    name: {ward.name}", "    counters:"]
            for c, code in enumerate(ward.counters, start=1):
                lines += [f"      - code: {code}", f"        name: Quầy {c:02d}"]
    return "\n".join(lines) + "\n"


def oa_env(oas: list[Oa]) -> dict[str, str]:
    """The environment the units file's `env:` references name."""
    env: dict[str, str] = {}
    for oa in oas:
        k = oa.number
        env[f"OA{k:03d}_APP_SECRET"] = f"province-app-secret-{k:03d}"
        env[f"OA{k:03d}_OA_SECRET_KEY"] = oa.oa_secret_key
        env[f"OA{k:03d}_ACCESS_TOKEN"] = oa.access_token
        env[f"OA{k:03d}_REFRESH_TOKEN"] = oa.refresh_token
    return env


def import_units(url: str, path: Path) -> None:
    """`sipas-bot units import` of `path` into the database at `url`, in this process."""
    from bot.units import read_units_source
    from storage import repositories as repo
    from storage.db import make_engine, make_session_factory

    source = read_units_source(path)
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            now = dt.datetime.now(dt.UTC)
            repo.upsert_oas(session, source.oas, now=now)
            repo.upsert_units(session, source.units, now=now)
    finally:
        engine.dispose()
