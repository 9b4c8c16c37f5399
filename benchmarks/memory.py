"""Memory: a session holding `N` loaded records against the same records as plain dicts.

Run it with `python -m benchmarks.memory` (`--records N`, default 100,000).

Each side runs in a fresh child process that imports the same modules, resets
its peak RSS to the current RSS (Linux `/proc/self/clear_refs`), notes the
peak (`VmHWM`, the counter behind `resource.getrusage(...).ru_maxrss`; see
`_peak_bytes`), builds its records, and notes the peak again; the growth is
what the records cost. Memory the
allocator keeps after the imports is handed back to the system first, so that
the records do not fill it unseen.

* `uow`: a `Session` whose identity map holds `N` records, merged from wire
  items the way `Session.get` merges a read (object, committed snapshot,
  record state, key), with no server involved;
* `dicts`: `{pk: dict}` of the same `N` records as plain Python dicts, what a
  hand-written cache of boto3 results holds.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import resource
import subprocess
import sys
from typing import Any

__all__ = ["main", "measure"]


def _peak_bytes() -> int:
    """This process's peak RSS.

    On Linux it is read from `VmHWM` in `/proc/self/status`: the counter
    behind `getrusage`'s `ru_maxrss`, which `ru_maxrss` itself cannot show
    here, because it also keeps the peak of the image the child was forked
    from (the whole benchmark process, or pytest). Elsewhere, `ru_maxrss`.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    # Linux and most BSDs report ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> None:
    """Make the peak RSS the current RSS, so that import-time peaks do not hide growth.

    The memory freed after the imports (compiling, loading botocore's models)
    is first handed back to the system (glibc `malloc_trim`), else the records
    would fill it without the RSS growing. Linux only; elsewhere a no-op.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        pass


def _child(side: str, n: int) -> dict[str, Any]:
    import uow
    from benchmarks.workloads import key_id, merge_loaded, record, wire_item
    from uow.session import Session
    from uow.testing import TEST_REGION

    gc.collect()
    _reset_peak()
    before = _peak_bytes()
    if side == "uow":
        session = Session(uow.Store(region_name=TEST_REGION))
        for i in range(n):
            merge_loaded(session, wire_item(i))
        held: Any = session
        assert len(session.identity_map) == n
    else:
        held = {key_id(i): record(i) for i in range(n)}
    gc.collect()
    after = _peak_bytes()
    del held
    return {"side": side, "records": n, "peak_before": before, "peak_after": after}


def measure(n: int) -> dict[str, Any]:
    """Run both sides in child processes; return their growth and the ratio."""
    sides = {}
    for side in ("dicts", "uow"):
        answer = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--child", side, "--records", str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(answer.stdout.strip().splitlines()[-1])
        sides[side] = figures["peak_after"] - figures["peak_before"]
    return {
        "records": n,
        "uow_bytes": sides["uow"],
        "dicts_bytes": sides["dicts"],
        "uow_bytes_per_record": round(sides["uow"] / n),
        "dicts_bytes_per_record": round(sides["dicts"] / n),
        "ratio": round(sides["uow"] / max(sides["dicts"], 1), 2),
    }


def table(figures: dict[str, Any]) -> list[str]:
    """The figures as text lines."""
    mib = 1024 * 1024
    return [
        f"{'':24}{'peak RSS growth':>17}{'per record':>12}",
        f"{'uow session':24}{figures['uow_bytes'] / mib:>13.1f} MiB"
        f"{figures['uow_bytes_per_record']:>10} B",
        f"{'plain dicts':24}{figures['dicts_bytes'] / mib:>13.1f} MiB"
        f"{figures['dicts_bytes_per_record']:>10} B",
        f"{'uow / dicts':24}{figures['ratio']:>16.2f}x",
    ]


def main(argv: list[str] | None = None) -> None:
    """Measure and print (or, with `--child`, measure one side and print JSON)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--child", choices=("uow", "dicts"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.records)))
        return
    print(f"{args.records:,} records")
    print("\n".join(table(measure(args.records))))


if __name__ == "__main__":
    main()
