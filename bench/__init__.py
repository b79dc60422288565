"""Benchmarks of sipas-bot (issue 6): webhook ingest, outbox delivery, concurrent surveys.

Run them with `make bench` (or `BENCH_QUICK=1 make bench` for a smoke run); results are in
docs/benchmarks.md. Nothing here is imported by the service or its tests.
"""
