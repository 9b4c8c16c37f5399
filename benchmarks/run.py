"""`make bench`: every benchmark, its tables, `results.json` and `RESULTS.md`.

    python -m benchmarks.run [--scale S] [--latencies 0,10,50] [--only wire,commit,reads,...]

The server workloads run on moto (`python -m moto.server` in a child process)
and, when `uow.testing.DynamoDBLocal` exists and starts, on DynamoDB Local,
each behind a counting `uow.testing.FaultProxy` that adds 0, 10 and 50 ms
to every request. `--scale` (or the environment variable `BENCH_SCALE`)
multiplies every size; the sizes actually run are printed and recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from benchmarks import commit, cpu_cost, exactly_once, memory, reads, report, wire
from benchmarks.harness import REPEATS, Backend, Row
from benchmarks.servers import MotoProcess, ProxyProcess, ServerHandle, dynamodb_local
from benchmarks.workloads import CONCURRENCY, Workload

__all__ = ["Plan", "main", "plan_for"]

HERE = Path(__file__).resolve().parent
PARTS = ("wire", "commit", "reads", "cpu", "memory", "exactly-once")


@attrs.frozen
class Plan:
    """What one run measures, every size already scaled."""

    scale: float
    latencies: tuple[float, ...]
    parts: tuple[str, ...]
    commits: tuple[Workload, ...]
    big: Workload | None  # the large commit, run at the lowest latency only
    big_clients: tuple[str, ...]
    # The latency check: at the highest latency, uow and the hand-tuned code with as
    # few requests in flight as keep the server below half its capacity (see
    # `_latency_check`), so that latency, not the server, bounds the time.
    latency_check: Workload | None
    gets: reads.ReadWorkload
    keys: reads.ReadWorkload
    # Sequential clients (one request at a time) run a same-mix sample of at most this many
    # changes or reads per latency; see `commit.run_client`.
    sequential_cap: dict[float, int]
    # Reads are sequential for uow (one session, one task): sizes shrink with latency.
    read_scale: dict[float, float]
    cpu_records: int
    cpu_repeat: int
    # Client CPU per request per data-plane API (`benchmarks.wire`): requests per API, passes.
    wire_requests: int
    wire_repeat: int
    memory_records: int
    backends: tuple[str, ...]
    # Run every client once, small and unrecorded, before measuring (see `_warm_up`).
    warm_up: bool = True
    # Windows shorter than `harness.QUICK` are run up to this many times; the fastest counts.
    repeats: int = REPEATS
    # uow and its same-guarantee peers run this many rounds, alternating (see `_commit_rows`).
    pair_rounds: int = 3

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "latencies_ms": [round(latency * 1000) for latency in self.latencies],
            "parts": list(self.parts),
            "commit_workloads": {
                w.name: w.describe() for w in (*self.commits, self.big) if w is not None
            },
            "large_commit_clients": list(self.big_clients),
            "latency_check": None if self.latency_check is None else self.latency_check.describe(),
            "sequential_cap": {f"{k * 1000:.0f}ms": v for k, v in self.sequential_cap.items()},
            "read_scale": {f"{k * 1000:.0f}ms": v for k, v in self.read_scale.items()},
            "cpu_records": self.cpu_records,
            "wire_requests": self.wire_requests,
            "memory_records": self.memory_records,
            "backends": list(self.backends),
            "backends_after_the_first": (
                f"{self.commits[0].name} only, at the lowest and highest latency"
            ),
        }


def plan_for(
    scale: float,
    latencies: Sequence[float] = (0.0, 0.01, 0.05),
    parts: Sequence[str] = PARTS,
    backends: Sequence[str] = ("moto", "dynamodb-local"),
    big_scale: float = 0.3,
) -> Plan:
    """The default sizes (a full run takes about 15 minutes on 2 cores), times `scale`."""

    def n(size: int) -> int:
        return max(1, round(size * scale))

    return Plan(
        scale=scale,
        latencies=tuple(latencies),
        parts=tuple(parts),
        commits=(
            Workload("mixed-1k", 600, 200, 200).scaled(scale),
            Workload("delete-heavy", 50, 0, 450).scaled(scale),
            Workload("insert-heavy", 50, 450, 0).scaled(scale),
        ),
        # 10,000 changes cost moto about 60 s of CPU per client that sends 8,000 single
        # writes: scaled to 3,000 by default (BENCH_BIG_SCALE=1 for the full size).
        big=Workload("mixed-10k", 6000, 2000, 2000).scaled(scale * big_scale),
        # The sequential clients' samples would repeat mixed-1k's: left out here.
        big_clients=(commit.UOW_ADD, commit.TUNED, commit.BATCH_WRITER, commit.PYNAMODB),
        latency_check=Workload("latency-check", 120, 40, 40).scaled(scale),
        gets=reads.ReadWorkload("get-hits", n(10_000), 0.9),
        keys=reads.ReadWorkload("get-keys", n(1_000), 0.0),
        sequential_cap={0.0: n(200), 0.01: n(200), 0.05: n(100)},
        read_scale={0.0: 0.2, 0.01: 0.1, 0.05: 0.05},
        cpu_records=n(10_000),
        wire_requests=n(600),
        wire_repeat=2,
        # Best of 10: the host's other tenants move single passes by a third.
        cpu_repeat=10 if scale >= 0.5 else 2,
        # Below a few thousand records, page and arena granularity swamp the records.
        memory_records=max(2_000, n(100_000)),
        backends=tuple(backends),
    )


def _cap(plan: Plan, latency: float) -> int:
    return plan.sequential_cap.get(latency, min(plan.sequential_cap.values()))


def _say(text: str) -> None:
    print(text, flush=True)


async def _server_part(plan: Plan, server: ServerHandle, results: dict[str, Any]) -> None:
    with ProxyProcess(server.endpoint) as proxy:
        async with Backend(server, proxy) as backend:
            if plan.warm_up:
                await _warm_up(plan, backend)
            for latency in plan.latencies:
                proxy.latency = latency
                cap = _cap(plan, latency)
                if "commit" in plan.parts:
                    workloads = list(plan.commits)
                    if latency == min(plan.latencies) and plan.big is not None:
                        workloads.append(plan.big)
                    for workload in workloads:
                        clients = plan.big_clients if workload is plan.big else commit.CLIENTS
                        rows = await _commit_rows(plan, backend, workload, clients, cap)
                        minimum = {
                            commit.UOW_ADD: workload.min_requests(create_only=True),
                            commit.UOW_OVERWRITE: workload.min_requests(create_only=False),
                        }
                        _record(
                            results,
                            kind="commit",
                            name=workload.name,
                            description=workload.describe(),
                            entry={
                                "backend": backend.name,
                                "latency_ms": round(latency * 1000),
                                "rows": [row.to_json() for row in rows],
                                "min_requests": minimum,
                            },
                        )
                if "commit" in plan.parts and latency == max(plan.latencies) and latency > 0:
                    await _latency_check(plan, backend, results, latency)
                if "reads" in plan.parts:
                    factor = plan.read_scale.get(latency, 0.1)
                    for base, clients in (
                        (plan.gets, reads.GET_HITS_CLIENTS),
                        (plan.keys, reads.GET_KEYS_CLIENTS),
                    ):
                        read = base.scaled(factor)
                        rows = [
                            await reads.run_read(
                                backend, read, client, cap=cap, repeats=plan.repeats
                            )
                            for client in clients
                        ]
                        _record(
                            results,
                            kind="reads",
                            name=read.name,
                            description=read.describe(),
                            entry={
                                "backend": backend.name,
                                "latency_ms": round(latency * 1000),
                                "rows": [row.to_json() for row in rows],
                            },
                        )


async def _latency_check(
    plan: Plan, backend: Backend, results: dict[str, Any], latency: float
) -> None:
    """uow and the hand-tuned code at `latency`, with a server far from saturation.

    At 32 requests in flight and 50 ms each, the clients ask for 640 requests
    a second; moto serves about 100 on this machine, DynamoDB Local about 250,
    so the server, not the latency, sets the pace. Here the concurrency is
    the largest that asks for at most `report.UNSATURATED` of the pace measured at
    +0 ms in this run, and the commit time is judged against
    ceil(requests / concurrency) x latency.
    """
    workload = plan.latency_check
    source = plan.commits[0].name
    capacity = report.server_capacity(results, backend.name, source, latency_ms=0)
    if workload is None or capacity is None:
        _say(f"latency check skipped: no +0 ms run of {source} on {backend.name} to size it\n")
        return
    concurrency = max(1, int(report.UNSATURATED * capacity * latency))
    clients = (commit.UOW_ADD, commit.TUNED)
    rows = await _commit_rows(
        plan, backend, workload, clients, workload.size, concurrency=concurrency
    )
    _record(
        results,
        kind="commit",
        name=workload.name,
        description=f"{workload.describe()}; {concurrency} in flight",
        entry={
            "backend": backend.name,
            "latency_ms": round(latency * 1000),
            "rows": [row.to_json() for row in rows],
            "min_requests": {commit.UOW_ADD: workload.min_requests(create_only=True)},
            "concurrency": concurrency,
            "server_capacity_rps": round(capacity, 1),
        },
    )


async def _commit_rows(
    plan: Plan,
    backend: Backend,
    workload: Workload,
    clients: Sequence[str],
    cap: int,
    *,
    concurrency: int = CONCURRENCY,
) -> list[Row]:
    """Every client once, then uow and its peers in more rounds; each one's fastest run counts.

    The large commit runs one round only (its windows are long enough).

    uow and the hand-tuned code that gives the same guarantees send the same
    requests: their ratio is the verdict, so each gets `plan.pair_rounds`
    chances, in alternating order, against a neighbour's burst of load.
    """
    rows = {
        client: await commit.run_client(
            backend, workload, client, cap=cap, repeats=plan.repeats, concurrency=concurrency
        )
        for client in clients
    }
    if plan.pair_rounds > 1 and workload is not plan.big:
        paired = [client for client in clients if client in commit.PAIRED]
        for round_ in range(1, plan.pair_rounds):
            # Every other round in reverse order, so no client always follows the same one.
            for client in reversed(paired) if round_ % 2 else paired:
                again = await commit.run_client(
                    backend, workload, client, cap=cap, repeats=1, concurrency=concurrency
                )
                runs = rows[client].runs + again.runs
                if again.seconds < rows[client].seconds:
                    rows[client] = again
                rows[client] = attrs.evolve(rows[client], runs=runs)
        for client in paired:
            best = rows[client]
            rows[client] = attrs.evolve(
                best, note=_join(best.note, f"best of {plan.pair_rounds} rounds")
            )
    return [rows[client] for client in clients]


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


async def _warm_up(plan: Plan, backend: Backend) -> None:
    """Run every client once, small, and forget the figures.

    The first requests to a fresh server (DynamoDB Local's JIT compiler, moto's
    lazy imports) and through each library cost more than the later ones.
    """
    backend.proxy.latency = 0.0
    small = Workload("warm-up", 30, 10, 10).scaled(min(1.0, plan.scale * 10))
    if "commit" in plan.parts:
        for client in commit.CLIENTS:
            await commit.run_client(backend, small, client, cap=small.size, repeats=1)
    if "reads" in plan.parts:
        for read, clients in (
            (reads.ReadWorkload("warm-up", small.size, 0.9), reads.GET_HITS_CLIENTS),
            (reads.ReadWorkload("warm-up", small.size, 0.0), reads.GET_KEYS_CLIENTS),
        ):
            for client in clients:
                await reads.run_read(backend, read, client, cap=read.gets, repeats=1)


def _record(
    results: dict[str, Any], *, kind: str, name: str, description: str, entry: dict[str, Any]
) -> None:
    """Add one workload run to `results`, with its ratios, and print its table."""
    entry["ratios"] = report.ratios(kind, entry["rows"])
    workload = results["workloads"].setdefault(
        name, {"kind": kind, "description": description, "runs": []}
    )
    workload["runs"].append(entry)
    _say("\n".join(report.run_table(name, description, entry)) + "\n")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in (
        "uow",
        "aioboto3",
        "aiobotocore",
        "botocore",
        "boto3",
        "moto",
        "pynamodb",
        "aiodynamo",
    ):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model or platform.processor(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_at_start": list(os.getloadavg()),
    }


def run(plan: Plan, command: str) -> dict[str, Any]:
    """Measure everything in `plan`; return the results (see `results.json`)."""
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "command": command,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": _machine(),
            "versions": _versions(),
            "plan": plan.to_json(),
        },
        "workloads": {},
    }
    if "cpu" in plan.parts:
        rows = cpu_cost.measure(plan.cpu_records, plan.cpu_repeat)
        results["cpu"] = {"records": plan.cpu_records, "rows": rows}
        _say(f"CPU per record, no server ({plan.cpu_records:,} records, best of {plan.cpu_repeat})")
        _say("\n".join(cpu_cost.table(rows)) + "\n")
    if "wire" in plan.parts:
        # On DynamoDB Local when it runs: it keeps connections alive, as DynamoDB does.
        server = wire.server_for("dynamodb-local" if "dynamodb-local" in plan.backends else "moto")
        if server is None:
            server = wire.server_for("moto")
        assert server is not None
        with server:
            figures = wire.measure(server, plan.wire_requests, plan.wire_repeat)
        results["wire"] = figures
        _say("\n".join(wire.table(figures)) + "\n")
    if "memory" in plan.parts:
        figures = memory.measure(plan.memory_records)
        results["memory"] = figures
        _say(f"Memory: {plan.memory_records:,} records held")
        _say("\n".join(memory.table(figures)) + "\n")
    if "exactly-once" in plan.parts:
        # The cost of exactly-once ADD (DESIGN §11) on the server that honours tokens.
        adds = max(50, int(1000 * plan.scale))
        tokens: ServerHandle = dynamodb_local() or MotoProcess()
        with tokens:
            figures = exactly_once.measure(tokens, adds)
            sweep = exactly_once.cancellations(tokens)
        results["exactly_once"] = {**figures, "cancellations": sweep}
        _say("Exactly-once ADD against the plain UpdateItem")
        _say("\n".join(exactly_once.table(figures)) + "\n")
        _say("Commits cut by a timeout, then committed again (20 ms per request, 8 in flight)")
        _say("\n".join(exactly_once.cancellation_table(sweep)) + "\n")
    if {"commit", "reads"} & set(plan.parts):
        for name in plan.backends:
            server = MotoProcess() if name == "moto" else dynamodb_local()
            if server is None:
                _say(f"{name}: not available, skipped\n")
                continue
            part = plan
            if name != "moto":
                # The second backend checks that the picture holds on a higher-fidelity
                # server: the main commit workload at every latency says that, in the time.
                part = attrs.evolve(
                    plan,
                    parts=("commit",),
                    commits=plan.commits[:1],
                    big=None,
                    latencies=tuple(sorted({min(plan.latencies), max(plan.latencies)})),
                )
            with server:
                _say(f"== {server.name} at {server.endpoint} ==\n")
                asyncio.run(_server_part(part, server, results))
    meta = results["meta"]
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["targets"] = report.targets(results)
    return results


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run, print the tables, write `results.json` and `RESULTS.md`."""
    # A plain `kill` unwinds like Ctrl-C, so the server and proxy processes are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=float(os.environ.get("BENCH_SCALE", "1")),
        help="multiply every size (default: $BENCH_SCALE or 1)",
    )
    parser.add_argument("--latencies", default="0,10,50", help="added ms per request")
    parser.add_argument("--only", default=",".join(PARTS), help="parts to run: " + ",".join(PARTS))
    parser.add_argument("--backends", default="moto,dynamodb-local")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.json/RESULTS.md go")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    parts = tuple(part for part in args.only.split(",") if part)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    plan = plan_for(
        args.scale,
        big_scale=float(os.environ.get("BENCH_BIG_SCALE", "0.3")),
        latencies=tuple(float(ms) / 1000 for ms in args.latencies.split(",")),
        parts=parts,
        backends=tuple(args.backends.split(",")),
    )
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.scale != 1 and "--scale" not in command:
        command = f"BENCH_SCALE={args.scale:g} {command}"
    results = run(plan, command.strip())
    _say("\n".join(report.targets_table(results["targets"])))
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "RESULTS.md").write_text(report.markdown(results))
        _say(f"\nwrote {args.out / 'results.json'} and {args.out / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
