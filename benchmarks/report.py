"""Tables, ratios and target checks, from the results a run records (`results.json`).

Everything here reads plain dicts, so `RESULTS.md` can be rendered again from
a saved `results.json`: `python -m benchmarks.report benchmarks/results.json`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["markdown", "ratios", "run_table", "targets", "targets_table"]

UOW_CLIENTS = {
    "commit": ("uow add()", "uow add(overwrite=True)"),
    "reads": ("uow",),
}
# The baseline that writes (or reads) with the same guarantees as each uow flavour.
PEERS = {
    "uow add()": "aioboto3 hand-tuned",
    "uow add(overwrite=True)": "aioboto3 hand-tuned, batched puts",
    "uow": "aioboto3 hand-tuned",
}
STRUCTNOSQL = "StructNoSQL-style"
CONCURRENCY = 32
SHORT = {"uow add()": "add()", "uow add(overwrite=True)": "overwrite", "uow": "uow"}


def ratios(kind: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """uow's throughput over each baseline's (above 1: uow is faster), and the same for CPU.

    `client_cpu` is the baseline's client CPU per item over uow's (above 1:
    uow spends less).
    """
    measured = [row for row in rows if row["items"] > 0 and row["seconds"] > 0]
    out: dict[str, Any] = {"throughput": {}, "client_cpu": {}}
    for ours in measured:
        if ours["client"] not in UOW_CLIENTS[kind]:
            continue
        speed = out["throughput"].setdefault(ours["client"], {})
        cpu = out["client_cpu"].setdefault(ours["client"], {})
        for theirs in measured:
            if theirs is ours:
                continue
            speed[theirs["client"]] = round(ours["items_per_s"] / theirs["items_per_s"], 3)
            if ours["client_cpu_us_per_item"] > 0:
                cpu[theirs["client"]] = round(
                    theirs["client_cpu_us_per_item"] / ours["client_cpu_us_per_item"], 3
                )
    return out


def _kind(entry: dict[str, Any]) -> str:
    return "commit" if "min_requests" in entry else "reads"


def run_table(name: str, description: str, entry: dict[str, Any]) -> list[str]:
    """One workload at one latency on one backend, as text."""
    kind = _kind(entry)
    ours = [c for c in UOW_CLIENTS[kind] if c in entry["ratios"]["throughput"]]
    head = (
        f"{'client':36}{'items/s':>9}{'time s':>9}{'requests':>10}{'CPU µs/it':>11}"
        f"{'server s':>10}" + "".join(f"{'uow ' + SHORT[c] + ' x':>16}" for c in ours)
    )
    lines = [f"{kind} {name} · {description} · {entry['backend']} +{entry['latency_ms']} ms", head]
    for row in entry["rows"]:
        if row["items"] == 0:
            lines.append(f"{row['client']:36}{row['note']}")
            continue
        server = row["server_cpu_s"]
        cells = "".join(
            f"{_ratio(entry['ratios']['throughput'][c].get(row['client'])):>16}" for c in ours
        )
        lines.append(
            f"{row['client']:36}{row['items_per_s']:>9,.0f}{row['seconds']:>9.2f}"
            f"{row['requests']:>10,}{row['client_cpu_us_per_item']:>11,.0f}"
            f"{'' if server is None else f'{server:.1f}':>10}{cells}"
            + (f"  ({row['note']})" if row["note"] else "")
        )
    return lines


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _runs(results: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, workload in results.get("workloads", {}).items():
        if workload["kind"] == kind:
            for entry in workload["runs"]:
                yield name, entry


def _row(entry: dict[str, Any], client: str) -> dict[str, Any] | None:
    for row in entry["rows"]:
        if row["client"] == client and row["items"] > 0:
            found: dict[str, Any] = row
            return found
    return None


def _where(name: str, entry: dict[str, Any]) -> str:
    return f"{name} {entry['backend']} +{entry['latency_ms']}ms"


Figure = tuple[bool | None, float, str]  # (meets the target? None: not judged, badness, detail)


def _commit_throughput(results: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    for name, entry in _runs(results, "commit"):
        for ours, peer in PEERS.items():
            ratio = entry["ratios"]["throughput"].get(ours, {}).get(peer)
            if ratio is not None and ours in UOW_CLIENTS["commit"]:
                detail = f"{_where(name, entry)} {ours} / {peer}: {ratio:.2f}x"
                mine, theirs = _row(entry, ours), _row(entry, peer)
                if mine is not None and theirs is not None:
                    detail += f" (runs: uow {_spread(mine)}, peer {_spread(theirs)})"
                out.append((ratio >= 0.95, -ratio, detail))
    return out


def _spread(row: dict[str, Any]) -> str:
    """A client's run-to-run spread: `3 runs 1.02-1.31s`, the fastest counted."""
    runs = row.get("runs_s") or [row["seconds"]]
    if len(runs) == 1:
        return f"1 run {runs[0]:.2f}s"
    return f"{len(runs)} runs {min(runs):.2f}-{max(runs):.2f}s"


def _commit_requests(results: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    for name, entry in _runs(results, "commit"):
        for ours, minimum in entry["min_requests"].items():
            row = _row(entry, ours)
            if row is not None and minimum:
                excess = row["requests"] / minimum
                detail = (
                    f"{_where(name, entry)} {ours}: {row['requests']} sent, "
                    f"minimum {minimum} ({excess:.3f}x)"
                )
                out.append((excess <= 1.05, excess, detail))
    return out


# The server is "not saturated" when the requests asked of it per second stay at most
# this share of what it serves with no added latency (measured in the same run).
UNSATURATED = 0.5


def server_capacity(
    results: dict[str, Any], backend: str, workload: str, *, latency_ms: int
) -> float | None:
    """Requests per second `uow add()` got through on `workload` at +`latency_ms`."""
    for entry in results["workloads"].get(workload, {}).get("runs", ()):
        if entry["backend"] == backend and entry["latency_ms"] == latency_ms:
            for row in entry["rows"]:
                if row["client"] == "uow add()" and row["seconds"] > 0:
                    return float(row["requests"] / row["seconds"])
    return None


def _latency_bound(results: dict[str, Any]) -> list[Figure]:
    """At +50 ms: time against 1.3 x ceil(requests / concurrency) x 50 ms, where the
    server is not saturated; peers shown, not judged; saturated runs reported."""
    out: list[Figure] = []
    for name, entry in _runs(results, "commit"):
        if entry["latency_ms"] != 50:
            continue
        concurrency = entry.get("concurrency", CONCURRENCY)
        capacity = entry.get("server_capacity_rps") or server_capacity(
            results, entry["backend"], name, latency_ms=0
        )
        demand = concurrency / 0.05
        saturated = capacity is None or demand > UNSATURATED * capacity
        for client in dict.fromkeys((*UOW_CLIENTS["commit"], *PEERS.values())):
            row = _row(entry, client)
            if row is None:
                continue
            ideal = math.ceil(row["requests"] / concurrency) * 0.05
            share = row["seconds"] / ideal
            detail = (
                f"{_where(name, entry)} {client}, {concurrency} in flight: "
                f"{row['seconds']:.2f}s against 1.3 x {ideal:.2f}s = {1.3 * ideal:.2f}s "
                f"({share:.2f}x)"
            )
            if capacity is not None:
                detail += f"; asks {demand:.0f} req/s of a server serving {capacity:.0f} at +0 ms"
            ours = client in UOW_CLIENTS["commit"]
            if saturated:
                detail = f"(server-bound, not judged) {detail}"
            elif not ours:
                detail = f"(peer) {detail}"
            out.append((share <= 1.3 if ours and not saturated else None, share, detail))
    return out


def _versus(results: dict[str, Any], kind: str, ours: str, theirs: str) -> list[Figure]:
    out: list[Figure] = []
    for name, entry in _runs(results, kind):
        ratio = entry["ratios"]["throughput"].get(ours, {}).get(theirs)
        if ratio is not None:
            out.append((None, -ratio, f"{_where(name, entry)} {ours} / {theirs}: {ratio:.2f}x"))
    return out


def _client_cpu(results: dict[str, Any]) -> list[Figure]:
    """uow's client CPU per change over its same-guarantee peer's (below 1: uow spends less)."""
    out: list[Figure] = []
    for name, entry in _runs(results, "commit"):
        for ours, peer in PEERS.items():
            mine, theirs = _row(entry, ours), _row(entry, peer)
            if ours in UOW_CLIENTS["commit"] and mine is not None and theirs is not None:
                ratio = mine["client_cpu_us_per_item"] / max(theirs["client_cpu_us_per_item"], 1)
                detail = (
                    f"{_where(name, entry)} {ours}: {mine['client_cpu_us_per_item']:,.0f} µs "
                    f"per change against {theirs['client_cpu_us_per_item']:,.0f} ({ratio:.2f}x)"
                )
                out.append((None, ratio, detail))
    return out


def _cpu(results: dict[str, Any], operation: str, limit: float, unit: str) -> list[Figure]:
    for row in results.get("cpu", {}).get("rows", ()):
        if row["operation"] == operation:
            detail = (
                f"{row['uow_us']:.2f} µs {unit} "
                f"(hand-written equivalent: {row['hand_written_us']:.2f} µs)"
            )
            return [(row["uow_us"] <= limit, row["uow_us"], detail)]
    return []


def _wire(results: dict[str, Any], key: str, limit: float, theirs: str) -> list[Figure]:
    """Lean CPU per request over `theirs`, per API (below `limit`: met)."""
    found = results.get("wire")
    if not found:
        return []
    out: list[Figure] = []
    for row in found["rows"]:
        ratio = row.get(key)
        if ratio is None:
            continue
        detail = (
            f"{row['api']} on {found['backend']}: lean {row['us']['uow lean']:,.0f} µs against "
            f"{theirs} {row['us'][theirs]:,.0f} µs per request ({ratio:.2f}x)"
        )
        out.append((ratio <= limit, ratio, detail))
    return out


def _lean_commit(results: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    for name, entry in _runs(results, "commit"):
        if name != "mixed-1k" or entry["backend"] != "dynamodb-local":
            continue
        ratio = entry["ratios"]["throughput"].get("uow add()", {}).get("aioboto3 hand-tuned")
        if ratio is None:
            continue
        judged = ratio >= 1.5 if entry["latency_ms"] == 0 else None
        out.append((judged, -ratio, f"{_where(name, entry)} uow add() / hand-tuned: {ratio:.2f}x"))
    return out


def _memory(results: dict[str, Any]) -> list[Figure]:
    mem = results.get("memory")
    if mem is None:
        return []
    detail = (
        f"{mem['ratio']:.2f}x ({mem['uow_bytes_per_record']} B against "
        f"{mem['dicts_bytes_per_record']} B per record, {mem['records']:,} records)"
    )
    return [(mem["ratio"] < 2, mem["ratio"], detail)]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 7: met or not, the worst figure, and every figure behind it."""
    return [
        _target(
            "commit-throughput",
            "every commit >= 0.95x the hand-tuned aioboto3 code with the same guarantees",
            _commit_throughput(results),
        ),
        _target(
            "commit-client-cpu",
            "client CPU per change: uow over the same-guarantee hand-tuned code",
            _client_cpu(results),
        ),
        _target(
            "commit-requests",
            "commit requests <= 1.05x the minimum for the safety level",
            _commit_requests(results),
        ),
        _target(
            "commit-latency-bound",
            "at +50 ms, server not saturated: commit time <= 1.3 x ceil(requests / concurrency)"
            " x 50 ms",
            _latency_bound(results),
        ),
        _target(
            "vs-structnosql",
            "uow add() against a StructNoSQL-style commit, per latency",
            _versus(results, "commit", "uow add()", STRUCTNOSQL),
        ),
        _target(
            "plan-cpu",
            "diff + encode + plan <= 10 µs per changed record",
            _cpu(results, "edit: diff + encode + plan", 10, "per edited record")
            + _cpu(results, "edit with kind: diff+encode+plan", 10, "per edited record (kind)"),
        ),
        _target(
            "cached-get",
            "cached get <= 2 µs",
            _cpu(results, "cached get (map hit)", 2, "per get"),
        ),
        _target("memory", "session memory < 2x the same records as plain dicts", _memory(results)),
        _target(
            "wire-vs-aioboto3",
            "lean transport: client CPU per request <= 0.35x hand-written aioboto3, every API",
            _wire(results, "lean_over_hand", 0.35, "aioboto3 hand-written"),
        ),
        _target(
            "wire-vs-aiodynamo",
            "lean transport: client CPU per request no worse than aiodynamo, every API",
            _wire(results, "lean_over_aiodynamo", 1.0, "aiodynamo"),
        ),
        _target(
            "lean-commit",
            "mixed-1k on DynamoDB Local at +0 ms: uow add() >= 1.5x aioboto3 hand-tuned items/s",
            _lean_commit(results),
        ),
        _target(
            "reads",
            "uow reads against the hand-tuned aioboto3 reads",
            _versus(results, "reads", "uow", PEERS["uow"]),
        ),
    ]


def _target(key: str, text: str, figures: list[Figure]) -> dict[str, Any]:
    judged = [figure for figure in figures if figure[0] is not None]
    worst = max(judged or figures, key=lambda figure: figure[1], default=None)
    return {
        "target": key,
        "text": text,
        "met": all(figure[0] for figure in judged) if judged else None,
        "worst": None if worst is None else worst[2],
        "details": [figure[2] for figure in figures],
    }


def targets_table(found: list[dict[str, Any]]) -> list[str]:
    lines = ["Targets:"]
    for target in found:
        verdict = {True: "met", False: "MISSED", None: "reported"}[target["met"]]
        lines.append(f"  [{verdict:>8}] {target['text']}")
        if target["worst"]:
            lines.append(f"             worst: {target['worst']}")
    return lines


def _md_run(name: str, entry: dict[str, Any]) -> list[str]:
    kind = _kind(entry)
    ours = [c for c in UOW_CLIENTS[kind] if c in entry["ratios"]["throughput"]]
    head = (
        "| client | items/s | time s | requests | client CPU µs/item | server CPU s | "
        + " | ".join(f"uow {SHORT[c]} x" for c in ours)
        + " | note |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in entry["rows"]:
        if row["items"] == 0:
            lines.append(f"| {row['client']} |" + " |" * (5 + len(ours)) + f" {row['note']} |")
            continue
        server = row["server_cpu_s"]
        cells = " | ".join(
            _ratio(entry["ratios"]["throughput"][c].get(row["client"])) for c in ours
        )
        apis = ", ".join(f"{api} {n}" for api, n in row["requests_by_api"].items())
        lines.append(
            f"| {row['client']} | {row['items_per_s']:,.0f} | {row['seconds']:.2f} | "
            f"{row['requests']:,} ({apis}) | {row['client_cpu_us_per_item']:,.0f} | "
            f"{'' if server is None else f'{server:.1f}'} | {cells} | {row['note']} |"
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    """`RESULTS.md`: the machine, the command, the targets and every table."""
    meta = results["meta"]
    machine = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    plan = meta["plan"]
    load = machine.get("load_average_at_start", [0])[0]
    cores = machine.get("cores") or 1
    lines = [
        "# Benchmark results",
        "",
        "The latest full run of `make bench` (see [README.md](README.md) for what each",
        "benchmark measures and how to read it). Regenerate this page with `make bench`.",
        "",
        f"- **Command:** `{meta['command']}` ({meta.get('seconds', 0):,.0f} s)",
        f"- **Date:** {meta['date']}",
        f"- **Machine:** {machine['cores']} cores, {machine['cpu']}, {machine['system']}",
        f"- **Versions:** {versions}",
        f"- **Load average** at start / end: {_loads(machine)}"
        + (
            " — **measured under load** (other jobs shared the cores), so absolute"
            " figures are pessimistic; the ratios compare clients measured in the same run."
            if load > cores / 2
            else ""
        ),
        f"- **Sizes:** scale {plan['scale']:g}; "
        + "; ".join(f"{k}: {v}" for k, v in plan["commit_workloads"].items())
        + "; the large commit runs at the lowest latency only, for "
        + ", ".join(plan["large_commit_clients"])
        + ". Sequential clients run a same-mix sample of at most "
        + _pairs(plan["sequential_cap"])
        + " changes or reads; read workloads are scaled by "
        + _pairs(plan["read_scale"])
        + ".",
        "",
        "## Targets",
        "",
        "| target | verdict | worst case |",
        "|---|---|---|",
    ]
    for target in results.get("targets", ()):
        verdict = {True: "met", False: "**missed**", None: "reported"}[target["met"]]
        lines.append(f"| {target['text']} | {verdict} | {target['worst'] or ''} |")
    lines.append("")
    for target in results.get("targets", ()):
        lines.append(f"<details><summary>{target['text']}: every figure</summary>\n")
        lines.extend(f"- {detail}" for detail in target["details"])
        lines.append("\n</details>\n")
    if "cpu" in results:
        lines += [
            "## CPU per record, no server",
            "",
            f"{results['cpu']['records']:,} records; best pass; client CPU time.",
            "",
            "| operation | uow µs | hand-written µs | hand-written / uow |",
            "|---|---|---|---|",
        ]
        for row in results["cpu"]["rows"]:
            hand = row["hand_written_us"]
            hand_text = "" if hand is None else f"{hand:.2f}"
            ratio = _ratio(row["ratio"])
            lines.append(f"| {row['operation']} | {row['uow_us']:.2f} | {hand_text} | {ratio} |")
        lines.append("")
    if "wire" in results:
        found = results["wire"]
        clients = list(found["rows"][0]["us"]) if found["rows"] else []
        lines += [
            "## Client CPU per request, per API",
            "",
            f"On {found['backend']}, {found['in_flight']} in flight, best of {found['repeat']}; "
            "µs of client CPU per request (see `benchmarks/wire.py`).",
            "",
            "| API | " + " | ".join(clients) + " | lean / hand-written | lean / aiodynamo |",
            "|---|" + "---|" * (len(clients) + 2),
        ]
        for row in found["rows"]:
            cells = " | ".join(
                "n/a" if row["us"][c] is None else f"{row['us'][c]:,.0f}" for c in clients
            )
            lines.append(
                f"| {row['api']} | {cells} | {_ratio(row['lean_over_hand'])} "
                f"| {_ratio(row['lean_over_aiodynamo'])} |"
            )
        lines.append("")
    if "memory" in results:
        mem = results["memory"]
        lines += [
            "## Memory",
            "",
            "| records | uow session | plain dicts | uow / dicts |",
            "|---|---|---|---|",
            f"| {mem['records']:,} "
            f"| {mem['uow_bytes'] / 2**20:.1f} MiB ({mem['uow_bytes_per_record']} B each) "
            f"| {mem['dicts_bytes'] / 2**20:.1f} MiB ({mem['dicts_bytes_per_record']} B each) "
            f"| {mem['ratio']:.2f}x |",
            "",
        ]
    for name, workload in results.get("workloads", {}).items():
        lines += [f"## {workload['kind']}: {name}", "", workload["description"], ""]
        for entry in workload["runs"]:
            lines += [f"### {entry['backend']}, +{entry['latency_ms']} ms per request", ""]
            lines += _md_run(name, entry)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _pairs(values: dict[str, Any]) -> str:
    """`{"0ms": 1000, "10ms": 400}` as `1000 at +0ms, 400 at +10ms`."""
    return ", ".join(f"{value} at +{latency}" for latency, value in values.items())


def _loads(machine: dict[str, Any]) -> str:
    start = machine.get("load_average_at_start") or [0.0]
    end = machine.get("load_average_at_end") or [0.0]
    return f"{start[0]:.1f} / {end[0]:.1f}"


if __name__ == "__main__":
    saved = json.loads(Path(sys.argv[1]).read_text())
    sys.stdout.write(markdown(saved))
