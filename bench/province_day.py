"""A province day (issue 17): 100 OAs, 1,000 counters, N surveys in an office day with a
morning peak, through signed webhooks, on the production set-up.

    python -m bench.province_day [--surveys 100000] [--day-seconds 600] [--oas 100]
                                 [--counters-per-oa 10] [--think 1.0]

On PostgreSQL (a schema of its own, dropped afterwards): `sipas-bot serve --workers 3
--no-background` and two `sipas-bot worker` processes in live mode, delivering to
bench/fake_zalo_server.py (50 ms per call). The units file the run imports names `--oas`
Official Accounts, each its own Zalo app with its own secrets and first token pair (from the
environment), and one ward per OA with `--counters-per-oa` counters.

The day: 07:30–17:00, compressed into `--day-seconds`; surveys start at random following the
hourly profile below (a morning peak at 9–10 h, a lunch lull). Each survey is a new citizen
at a counter picked at random, writing to that counter's OA: `#CODE`, five answers (1–5),
`bỏ qua`; every event is signed with the OA's own OA Secret Key. Like a person, the citizen
answers only after the OA's reply has reached Zalo (seen by polling the fake), plus a think
time (`--think` seconds, exponential), so the time from an answer's webhook POST to the
next question reaching Zalo is measured per answer; and from when the citizen sent it (its
due time: when every posting thread is busy, the event waits for one, as it would wait at
Zalo for a webhook that is slow to answer).

Checks (exit 1 if any fails): the web server and workers stayed up; every webhook answered
200 and was handled once; per citizen, exactly the expected messages, once each, in order,
each carrying the access token of the citizen's OA; every survey stored, completed, with
the answers sent; the outbox empty (none dead). Reports p50/p99 of answer → next question,
events/s and messages/s (overall and in the busiest 10 s), CPU by process group and the
load average during the run.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import heapq
import http.client
import itertools
import json
import os
import queue
import random
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    PEPPER,
    RESULTS,
    BenchDatabase,
    CpuMeter,
    Processes,
    count_rows,
    load_average,
    log,
    machine_info,
    postgres_available,
    write_result,
)
from bench.concurrent_surveys import (
    check_deliveries,
    check_responses,
    print_verdict,
    start_service,
    wait_outbox_empty,
)
from bench.events import Signed, Signer, post_signed, user_ids
from bench.expected import (
    ANSWERS,
    Expectations,
    Steps,
    expected_steps,
    normalise,
    respondents_with_a_case,
)
from bench.expected import survey_script as script_for
from bench.outbox import OUTBOX_COUNTS, fake_get, live_env, start_fake
from bench.province import Oa, import_units, oa_env, province, units_yaml
from bot.privacy import Pseudonymizer
from survey_flow.sipas import LOW_RATINGS

# Relative arrivals per hour of the office day (07:30–17:00): a morning peak at 9–10 h, a
# lunch lull, a smaller afternoon wave. Assumed from how one-stop counters are described
# (queues in the morning), not measured.
DAY_PROFILE: tuple[tuple[float, float, float], ...] = (
    (7.5, 8.0, 0.4),
    (8.0, 9.0, 1.2),
    (9.0, 10.0, 2.0),
    (10.0, 11.0, 1.5),
    (11.0, 11.5, 0.8),
    (11.5, 13.5, 0.15),
    (13.5, 14.0, 0.6),
    (14.0, 15.0, 1.1),
    (15.0, 16.0, 0.9),
    (16.0, 17.0, 0.5),
)


# --- what each citizen should receive -------------------------------------------------------


def place_name(counter: str) -> str:
    """How the greeting names a counter of `units_yaml` (W001Q01: Quầy 01 – UBND phường 001)."""
    return f"Quầy {counter[5:]} – UBND phường {counter[1:4]}"


def province_steps(oas: list[Oa], workdir: Path) -> Steps:
    """`expected_steps` for the province's counters, checked with mixed answers at counters
    of different wards."""
    import datetime as dt

    from bot.units import read_units_file
    from storage import repositories as repo

    plain = workdir / "units-plain.yaml"
    plain.write_text(units_yaml(oas, with_oas=False), "utf-8")
    expectations = Expectations()
    try:
        with expectations.runtime.session_factory.begin() as session:
            repo.upsert_units(session, read_units_file(plain), now=dt.datetime.now(dt.UTC))
        samples = [
            (oas[-1].counters[-1], (1, 2, 3, 4, 5)),
            (oas[len(oas) // 2].counters[0], (2, 5, 1, 4, 3)),
            (oas[len(oas) // 2].counters[-1], (3, 4, 5, 4, 3)),
            (oas[0].counters[-1], (5, 5, 5, 5, 2)),
        ]
        return expected_steps(
            expectations, oas[0].counters[0], samples=samples, place_name=place_name
        )
    finally:
        expectations.close()


# --- the day ----------------------------------------------------------------------------------


def arrival_offsets(n: int, day_seconds: float, rng: random.Random) -> list[float]:
    """`n` start times in [0, day_seconds), following DAY_PROFILE (sorted)."""
    weights = [(end - start) * w for start, end, w in DAY_PROFILE]
    cumulative = list(itertools.accumulate(weights))
    day_start, day_end = DAY_PROFILE[0][0], DAY_PROFILE[-1][1]
    out = []
    for _ in range(n):
        i = bisect.bisect_left(cumulative, rng.random() * cumulative[-1])
        start, end, _w = DAY_PROFILE[i]
        hour = start + rng.random() * (end - start)
        out.append((hour - day_start) / (day_end - day_start) * day_seconds)
    return sorted(out)


@dataclasses.dataclass
class Citizen:
    user: str
    oa: Oa
    counter: str
    values: tuple[int, ...]
    step: int = 0  # the next event to send
    sent_at: float = 0.0  # monotonic: when the citizen sent the event now awaited (its due time)
    posted_at: float = 0.0  # monotonic, of the first POST of that event (a poster was free)
    received: int = 0  # messages seen at the fake
    tries: int = 0
    event: Signed | None = None  # the event now being sent (re-sent as is on a failure)


class Day:
    """Schedules each citizen's next event, posts them from a pool of threads, and watches
    the fake Zalo for the replies that let a citizen go on."""

    def __init__(
        self,
        citizens: list[Citizen],
        starts: list[float],
        steps: Steps,
        *,
        port: int,
        fake_base: str,
        think: float,
        seed: int,
    ) -> None:
        self.citizens = {c.user: c for c in citizens}
        self.steps = {c.user: steps(c.counter, c.values) for c in citizens}
        self.port, self.fake_base, self.think = port, fake_base, think
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.heap: list[tuple[float, int, str]] = []
        self.seq = itertools.count()
        self.t0 = time.monotonic()
        for citizen, start in zip(citizens, starts, strict=True):
            self.heap.append((self.t0 + start, next(self.seq), citizen.user))
        heapq.heapify(self.heap)
        self.due: queue.Queue[str | None] = queue.Queue()
        self.signers = {
            c.oa.oa_id: Signer(c.oa.app_id, c.oa.oa_secret_key, c.oa.oa_id) for c in citizens
        }
        self.sign_lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.posts: list[float] = []  # monotonic time of each first POST of an event
        self.webhook: list[float] = []  # seconds per POST
        # (step, seconds from the POST to the first reply reaching the fake, seconds from
        # the citizen's sending: the wait for a free poster included, as a citizen's event
        # waits at Zalo when the webhook is slow to answer)
        self.reply_latency: list[tuple[int, float, float]] = []
        self.done = 0
        self.seen = 0  # fake calls read so far
        self.calls: list[list[Any]] = []

    def _expected_after(self, citizen: Citizen) -> int:
        """Messages the citizen has when the replies to the awaited event are all in."""
        return sum(len(s) for s in self.steps[citizen.user][: citizen.step + 1])

    def scheduler(self, deadline: float) -> None:
        while time.monotonic() < deadline and self.done < len(self.citizens):
            now = time.monotonic()
            with self.lock:
                while self.heap and self.heap[0][0] <= now:
                    due_at, _, user = heapq.heappop(self.heap)
                    if self.citizens[user].tries == 0:  # not a retry: the citizen sends now
                        self.citizens[user].sent_at = due_at
                    self.due.put(user)
                wait = (self.heap[0][0] - now) if self.heap else 0.05
            time.sleep(min(max(wait, 0.001), 0.05))

    def poster(self, deadline: float) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        last_used = 0.0
        try:
            while time.monotonic() < deadline:
                try:
                    user = self.due.get(timeout=0.2)
                except queue.Empty:
                    continue
                if user is None:
                    return
                citizen = self.citizens[user]
                if citizen.tries == 0:
                    text = script_for(citizen.counter, citizen.values)[citizen.step]
                    with self.sign_lock:
                        signer = self.signers[citizen.oa.oa_id]
                        citizen.event = signer.text_event(user, text, "x")
                event = citizen.event
                assert event is not None
                start = time.monotonic()
                if start - last_used > 1.0:  # gunicorn closes idle keep-alive connections
                    connection.close()
                with self.lock:
                    if citizen.tries == 0:
                        citizen.posted_at = start
                        self.posts.append(start)
                    citizen.tries += 1
                try:
                    status, body = post_signed(connection, event)
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    self._retry(citizen, f"{type(exc).__name__}: {exc}")
                    continue
                last_used = time.monotonic()
                elapsed = last_used - start
                if status != 200:
                    self._retry(citizen, f"HTTP {status}: {body[:200]!r}")
                    continue
                with self.lock:
                    self.webhook.append(elapsed)
                    self.outcomes[json.loads(body).get("outcome", "?")] += 1
        finally:
            connection.close()

    def _retry(self, citizen: Citizen, problem: str) -> None:
        """As Zalo does: the same event again a little later."""
        with self.lock:
            self.failures.append(problem)
            if citizen.tries < 5:
                heapq.heappush(self.heap, (time.monotonic() + 0.5, next(self.seq), citizen.user))
            else:
                self.done += 1  # given up: the checks will say so

    def watcher(self, deadline: float) -> None:
        while time.monotonic() < deadline and self.done < len(self.citizens):
            new = fake_get(self.fake_base, f"/_calls?since={self.seen}")
            now = time.monotonic()
            with self.lock:
                self.seen += len(new)
                self.calls.extend(new)
                for user_id, _text, t in new:
                    citizen = self.citizens.get(user_id)
                    if citizen is None:
                        continue
                    citizen.received += 1
                    if (
                        citizen.received
                        == self._expected_after(citizen)
                        - len(self.steps[user_id][citizen.step])
                        + 1
                    ):
                        self.reply_latency.append(
                            (citizen.step, t - citizen.posted_at, t - citizen.sent_at)
                        )
                    if citizen.received == self._expected_after(citizen):
                        citizen.step += 1
                        citizen.tries = 0
                        if citizen.step == len(self.steps[user_id]):
                            self.done += 1
                        else:
                            pause = self.rng.expovariate(1 / self.think) if self.think else 0
                            heapq.heappush(self.heap, (now + pause, next(self.seq), user_id))
            time.sleep(0.05)

    def run(self, *, threads: int, deadline: float) -> None:
        workers = [
            threading.Thread(target=self.poster, args=(deadline,), name=f"poster-{i}")
            for i in range(threads)
        ]
        workers.append(threading.Thread(target=self.watcher, args=(deadline,), name="watcher"))
        for worker in workers:
            worker.start()
        try:
            self.scheduler(deadline)
        finally:
            for _ in range(threads):
                self.due.put(None)
            for worker in workers:
                worker.join()


def busiest(times: list[float], window: float = 10.0) -> float:
    """The most events in any `window` seconds, per second."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return round(best / window, 1)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)

    return {"p50": at(50), "p90": at(90), "p99": at(99), "max": round(ordered[-1] * 1000, 1)}


class LoadSampler:
    """The 1-minute load average every 5 s while the run lasts."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(5.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {}
        return {
            "min": round(min(self.samples), 2),
            "mean": round(statistics.fmean(self.samples), 2),
            "max": round(max(self.samples), 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--surveys", type=int, default=100_000)
    parser.add_argument("--oas", type=int, default=100)
    parser.add_argument("--counters-per-oa", type=int, default=10)
    parser.add_argument(
        "--day-seconds",
        type=float,
        default=0.0,
        help="07:30–17:00 compressed into this "
        "(default: surveys / 8, i.e. 8 surveys started per second on average)",
    )
    parser.add_argument("--think", type=float, default=1.0, help="mean s before answering")
    parser.add_argument("--threads", type=int, default=32, help="posting threads")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="sipas-bot worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="per worker (its default)")
    parser.add_argument("--rate-per-minute", type=int, default=2000, help="per app, per worker")
    parser.add_argument("--delay", type=float, default=0.05, help="fake Zalo, s per call")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--timeout", type=float, default=0.0, help="s (default: day + 600)")
    args = parser.parse_args(argv)
    if not postgres_available():
        print("province_day: PostgreSQL does not answer on BENCH_PG_URL", file=sys.stderr)
        return 2
    day_seconds = args.day_seconds or args.surveys / 8
    timeout = args.timeout or day_seconds + 600
    logdir = RESULTS / "logs" / f"province-day-{time.strftime('%Y%m%d-%H%M%S')}"
    logdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    command = "python -m bench.province_day " + " ".join(argv if argv is not None else sys.argv[1:])
    rng = random.Random(args.seed)
    oas = province(args.oas, counters_per_unit=args.counters_per_oa)
    units_path = logdir / "units.yaml"
    units_path.write_text(units_yaml(oas, with_oas=True), "utf-8")
    log("computing the expected replies")
    steps = province_steps(oas, logdir)
    users = user_ids(args.surveys, base=4_000_000_000_000_000_000)
    citizens = []
    for user in users:
        oa = rng.choice(oas)
        values = tuple(rng.randint(1, 5) for _ in range(ANSWERS))
        citizens.append(Citizen(user, oa, rng.choice(oa.counters), values))
    starts = arrival_offsets(len(citizens), day_seconds, rng)
    expected = {c.user: [t for step in steps(c.counter, c.values) for t in step] for c in citizens}
    total_events = sum(len(script_for(c.counter, c.values)) for c in citizens)
    total_messages = sum(len(t) for t in expected.values())
    log(
        f"{args.oas} OAs, {args.oas * args.counters_per_oa} counters, {len(citizens)} surveys "
        f"({total_events} events, {total_messages} messages) over {day_seconds:.0f} s; web "
        f"x{args.web_workers}, {args.workers} worker(s) x concurrency {args.concurrency}"
    )
    result: dict[str, Any] = {"machine": machine, "command": command, "arguments": vars(args)}
    checks: dict[str, bool] = {}
    with (
        Processes() as procs,
        BenchDatabase("postgresql", on_exit=procs.stop_all) as database,
    ):
        import_units(database.url, units_path)
        fake, fake_base = start_fake(procs, logdir, delay=args.delay)
        env = {
            **live_env(database.url, fake_base, rate_per_minute=args.rate_per_minute),
            **oa_env(oas),
        }
        service = start_service(
            procs,
            env,
            logdir,
            web_workers=args.web_workers,
            workers=args.workers,
            concurrency=args.concurrency,
        )
        meter = CpuMeter(service.cpu_groups(fake))
        day = Day(
            citizens,
            starts,
            steps,
            port=service.port,
            fake_base=fake_base,
            think=args.think,
            seed=args.seed,
        )
        started = time.monotonic()
        meter.start()
        with LoadSampler() as loads:
            day.run(threads=args.threads, deadline=started + timeout)
            run_seconds = time.monotonic() - started
            log(f"day over after {run_seconds:.1f} s: {day.done}/{len(citizens)} citizens done")
            wait_outbox_empty(database.url, started + timeout + 60)
            cpu = meter.stop()
        exited = service.stop(procs)
        calls = fake_get(fake_base, "/_calls")
        tokens = fake_get(fake_base, "/_tokens")
        outbox = count_rows(database.url, OUTBOX_COUNTS)
        processed = count_rows(database.url, {"n": "SELECT count(*) FROM processed_events"})["n"]
        sizes = count_rows(
            database.url,
            {
                "database_bytes_schema": "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')",
                "survey_responses": "SELECT count(*) FROM survey_responses",
            },
        )
        surveys = count_rows(
            database.url,
            {
                "held": "SELECT count(*) FROM survey_responses WHERE quarantine <> 'none'",
                "not_counted": "SELECT count(*) FROM survey_responses WHERE NOT counted",
                "cases": "SELECT count(*) FROM cases WHERE response_id IS NOT NULL",
            },
        )
        with_case = respondents_with_a_case(database.url)
        scripts = {c.user: (script_for(c.counter, c.values), c.values) for c in citizens}
        response_problems, response_tally = check_responses(database.url, scripts)
    hashes = Pseudonymizer(PEPPER)
    expected = {
        c.user: [
            t
            for step in steps(c.counter, c.values, hashes.respondent_hash(c.user) in with_case)
            for t in step
        ]
        for c in citizens
    }
    low = {c.user for c in citizens if any(v in LOW_RATINGS for v in c.values)}
    delivery_problems, delivery_tally = check_deliveries(
        [(user_id, normalise(text), t) for user_id, text, t in calls], expected
    )
    received: dict[str, list[str]] = {}
    for user_id, text, _t in calls:
        received.setdefault(user_id, []).append(normalise(text))
    mismatch = next(
        (
            {"user": u, "received": received.get(u), "expected": texts}
            for u, texts in expected.items()
            if received.get(u) != texts
        ),
        None,
    )
    oa_of = {c.user: c.oa for c in citizens}
    wrong_tokens = sum(
        1
        for (user_id, _text, _t), token in zip(calls, tokens, strict=True)
        if user_id in oa_of
        and not token.startswith((oa_of[user_id].access_token, oa_of[user_id].refresh_token))
    )
    answers = [s for step, s, _ in day.reply_latency if 1 <= step <= ANSWERS]
    answers_sent = [s for step, _, s in day.reply_latency if 1 <= step <= ANSWERS]
    starts_latency = [s for step, s, _ in day.reply_latency if step == 0]
    call_times = [t for _u, _x, t in calls]
    window = (max(call_times) - min(call_times)) if len(call_times) > 1 else 0.0
    post_window = (max(day.posts) - min(day.posts)) if len(day.posts) > 1 else 0.0

    checks["web server and workers stayed up"] = not exited
    checks["every citizen finished their survey within the time limit"] = day.done == len(
        citizens
    ) and all(c.step == len(day.steps[c.user]) for c in citizens)
    checks["every webhook answered 200 and was handled"] = (
        day.outcomes.get("handled", 0) == total_events and not day.failures
    )
    checks["every event recorded once"] = processed == total_events
    checks["outbox: every message sent, none dead or pending"] = (
        outbox["sent"] == total_messages and outbox["dead"] == 0 and outbox["pending"] == 0
    )
    checks["fake Zalo: per citizen exactly the expected messages, once, in order"] = (
        not delivery_problems and delivery_tally.get("exact", 0) == len(citizens)
    )
    checks["every message carried its citizen's OA's access token"] = wrong_tokens == 0 and len(
        tokens
    ) == len(calls)
    checks["a case for a low rating unless the survey was held or not counted"] = (
        len(with_case) <= len(low)
        and len(low) - len(with_case) <= surveys["held"] + surveys["not_counted"]
    )
    checks["every survey stored, completed, with the answers sent"] = (
        not response_problems and response_tally.get("completed_with_answers_sent") == len(citizens)
    )
    result.update(
        {
            "oas": args.oas,
            "counters": args.oas * args.counters_per_oa,
            "surveys": len(citizens),
            "events": total_events,
            "messages_expected": total_messages,
            "day_seconds": day_seconds,
            "run_seconds": round(run_seconds, 1),
            "outcomes": dict(day.outcomes),
            "failures": day.failures[:20],
            "answer_to_next_question_ms": percentiles(answers),
            "answer_sent_to_next_question_ms": percentiles(answers_sent),
            "start_to_first_question_ms": percentiles(starts_latency),
            "webhook_ms": percentiles(day.webhook),
            "events_per_s": round(len(day.posts) / post_window, 1) if post_window else 0,
            "events_per_s_busiest_10s": busiest(day.posts),
            "messages_per_s": round(len(calls) / window, 1) if window else 0,
            "messages_per_s_busiest_10s": busiest(call_times),
            "outbox": outbox,
            "processed_events": processed,
            "wrong_tokens": wrong_tokens,
            "delivery_tally": delivery_tally,
            "delivery_problems": delivery_problems,
            "first_mismatch": mismatch,
            "response_tally": response_tally,
            "response_problems": response_problems,
            "schema_size": sizes,
            "surveys_held_not_counted_cases": surveys,
            "low_rated_surveys": len(low),
            "cpu_cores": cpu,
            "loadavg_during": loads.summary(),
            "loadavg_after": load_average(),
            "exited": exited,
            "checks": checks,
            "passed": all(checks.values()),
        }
    )
    path = write_result("province-day", result)
    print()
    print(
        f"province day: {args.oas} OAs, {result['counters']} counters, {len(citizens)} surveys, "
        f"{total_events} events, {total_messages} messages; day {day_seconds:.0f} s, "
        f"run {run_seconds:.0f} s"
    )
    print(f"  answer -> next question at Zalo: {result['answer_to_next_question_ms']} ms")
    print(f"  ... from the citizen's sending:  {result['answer_sent_to_next_question_ms']} ms")
    print(f"  #CODE -> first question:         {result['start_to_first_question_ms']} ms")
    print(f"  webhook POST:                    {result['webhook_ms']} ms")
    print(
        f"  events/s {result['events_per_s']} (busiest 10 s {result['events_per_s_busiest_10s']}),"
        f" messages/s {result['messages_per_s']} (busiest 10 s "
        f"{result['messages_per_s_busiest_10s']})"
    )
    print(f"  CPU (cores): {cpu}")
    print(f"  load average during the run: {result['loadavg_during']}")
    return print_verdict(
        checks, day.failures[:5] + delivery_problems + response_problems, path, logdir
    )


if __name__ == "__main__":
    raise SystemExit(main())
