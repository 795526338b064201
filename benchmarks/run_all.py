"""Run every benchmark and rewrite docs/PERFORMANCE.md (``make bench``).

Each benchmark module in this folder exposes ``main(argv) -> dict`` returning its figures and a
``targets`` mapping of target name → met (bool). This script runs them one after the other in
fresh processes (so one benchmark's memory does not colour the next), collects the JSON, prints a
table of what meets its target and what does not, and regenerates the performance report with the
machine and the date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = ROOT / "docs" / "PERFORMANCE.md"

#: Benchmarks in report order: (module file, title, extra arguments for a full run).
BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("pipeline_overhead.py", "Pipeline overhead (issue 2)", []),
    ("security.py", "Credential reads (issue 3)", []),
    ("audit_write.py", "Audit write throughput (issue 3)", []),
    ("emulator_query_memory.py", "Emulator query memory (issue 4)", []),
    ("salesforce.py", "Salesforce connector (issue 5)", []),
    ("slack.py", "Slack connector (issue 6)", []),
    ("email_send.py", "Email connector (issue 7)", []),
    ("webhook.py", "Webhook delivery (issue 8)", []),
    ("distributed.py", "Distributed state (issue 11)", []),
]

#: How a target's row is read from a benchmark's result: target name → (figure, value path,
#: peer, peer path, target text). Paths are dotted keys into the returned dict; a ``None`` peer
#: path means the peer is the target's own threshold. Targets not listed still get a row.
PAIRS: dict[str, dict[str, tuple[str, str, str, str | None, str]]] = {
    "pipeline_overhead.py": {
        "overhead_le_10us": ("pipeline overhead (us)", "overhead_us", "10 us", None, "<= 10 us"),
        "overhead_le_15pct": ("pipeline (us)", "pipeline_us", "bare call (us)", "bare_us",
                              "<= 1.15x bare"),
        "beats_library": ("pipeline (us)", "pipeline_us", "surveyed library (us)", "library_us",
                          "< library"),
        "open_circuit_le_5us": ("open-circuit rejection (us)", "open_circuit_us", "5 us", None,
                                "<= 5 us"),
    },
    "audit_write.py": {
        "record() <= 3 us": ("record() (us)", "record_us", "3 us", None, "<= 3 us"),
        ">= 10,000 audit events/s into SQLite": ("audit events/s", "throughput_eps",
                                                  "10,000/s", None, ">= 10,000/s"),
    },
    "webhook.py": {
        ">= 500 durable deliveries/s": ("durable deliveries/s", "durable_dps", "500/s", None,
                                        ">= 500/s"),
        ">= 50% of the bare httpx2 loop": ("durable deliveries/s", "durable_dps",
                                           "bare httpx2 requests/s", "bare_rps", ">= 0.5x bare"),
    },
    "salesforce.py": {
        "creates_wall_not_worse_than_thread_pool": (
            "creates wall (s), ours c16", "creates.ours_c16.wall_s",
            "simple-salesforce 16 threads (s)", "creates.simple_pool16.wall_s", "<= 1.05x peer"),
        "creates_10x_faster_than_sequential": (
            "creates wall (s), ours c16", "creates.ours_c16.wall_s",
            "simple-salesforce sequential (s)", "creates.simple_sequential.wall_s",
            "<= 0.1x peer"),
        "creates_cpu_per_call_not_above_simple_salesforce": (
            "CPU s / 1000 creates, ours", "creates.ours_c16.cpu_s_per_1000",
            "simple-salesforce pool", "creates.simple_pool16.cpu_s_per_1000", "<= 1x peer"),
        "query_wall_not_worse_than_simple_salesforce": (
            "query wall (s), ours", "query.ours.wall_s", "simple-salesforce (s)",
            "query.simple_salesforce.wall_s", "<= peer"),
        "query_memory_flat_under_50mb": ("query RSS growth (MB)", "query.ours.rss_growth_mb",
                                         "50 MB", None, "< 50 MB"),
        "bulk_ingest_peak_rss_under_150mb": ("bulk ingest peak RSS (MB)",
                                             "bulk_ingest.ours.peak_rss_mb", "150 MB", None,
                                             "< 150 MB"),
    },
    "slack.py": {
        "auth_test_at_least_as_fast_as_slack_sdk": (
            "auth.test throughput / slack_sdk", "auth_test.throughput_ratio", "1.0", None,
            ">= 1.0"),
        "auth_test_cpu_at_most_1_2x_slack_sdk": (
            "auth.test CPU / slack_sdk", "auth_test.cpu_ratio", "1.2", None, "<= 1.2"),
    },
    "email_send.py": {
        "send_ge_3x_smtplib": ("send speed-up vs smtplib per message",
                               "send_speedup_vs_smtplib_per_message", "3x", None, ">= 3x"),
    },
}  # fmt: skip

Row = dict[str, object]


def _get(data: object, path: str) -> object:
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def rows_for(file: str, title: str, data: dict[str, object]) -> list[Row]:
    """One row per target: figure, value, peer, peer value, ratio, target, met."""
    targets = data.get("targets")
    if not isinstance(targets, dict):
        figure = "(did not run)" if "error" in data else "(declares no target)"
        met = None if "error" not in data else False
        return [{"benchmark": title, "figure": figure, "value": None, "peer": None,
                 "peer_value": None, "ratio": None, "target": "-", "met": met}]  # fmt: skip
    rows: list[Row] = []
    for name, met in targets.items():
        pair = PAIRS.get(file, {}).get(str(name))
        figure, value, peer, peer_value, target = str(name), None, None, None, str(name)
        if pair is not None:
            figure, path, peer, peer_path, target = pair
            value = _get(data, path)
            peer_value = _get(data, peer_path) if peer_path else None
        ratio = None
        a, b = _number(value), _number(peer_value)
        if a is not None and b:
            ratio = round(a / b, 3)
        rows.append({"benchmark": title, "figure": figure, "value": value, "peer": peer,
                     "peer_value": peer_value, "ratio": ratio, "target": target,
                     "met": bool(met)})  # fmt: skip
    return rows


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores {cpu}{mem}, {platform.system()} {platform.machine()}, " + (
        f"Python {platform.python_version()}"
    )


def supports_quick(path: Path) -> bool:
    return '"--quick"' in path.read_text(encoding="utf-8")


def run_one(path: Path, extra: list[str]) -> dict[str, object]:
    # -P and PYTHONSAFEPATH (inherited by the benchmarks' own child processes): no module in
    # benchmarks/ may shadow the standard library. PYTHONPATH keeps the repository root
    # importable for children started with ``-m tests....``.
    proc = subprocess.run(
        [sys.executable, "-P", str(path), "--json", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PYTHONSAFEPATH": "1", "PYTHONPATH": str(ROOT)},
    )
    # A benchmark may exit 1 when a target is missed and still print its JSON: use it.
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                parsed: dict[str, object] = json.loads(line)
            except json.JSONDecodeError:
                break
            return parsed
    return {"error": (proc.stderr or proc.stdout).strip()[-2000:] or "no output"}


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def render(
    results: list[tuple[str, str, dict[str, object]]], when: str, where: str, quick: bool = False
) -> str:
    rows = [row for file, title, data in results for row in rows_for(file, title, data)]
    lines = [
        "# Performance",
        "",
        "Generated by `make bench` (`benchmarks/run_all.py`); do not edit by hand.",
        "Every figure is measured in the same run as the peer it is compared with.",
        "",
        f"- **Machine:** {where}",
        f"- **Date:** {when}",
        "- **Mode:** "
        + (
            "quick (`--quick`: smaller counts where a benchmark supports it; same targets)"
            if quick
            else "full"
        ),
        f"- **Targets met:** {sum(r['met'] is True for r in rows)} of "
        f"{sum(r['met'] is not None for r in rows)}",
        "",
        "## Targets",
        "",
        "| benchmark | figure | value | peer | peer value | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['benchmark']} | {r['figure']} | {_cell(r['value'])} | {_cell(r['peer'])} | "
            f"{_cell(r['peer_value'])} | {_cell(r['ratio'])} | {r['target']} | "
            f"{_met(r['met'], '**no**')} |"
        )
    missed = [(file, title, data) for file, title, data in results if _missed(data)]
    lines += ["", "## Why not met", ""]
    if not missed:
        lines.append("Every target is met.")
    for _file, title, data in missed:
        names = ", ".join(_missed(data)) or "(did not run)"
        notes = data.get("notes")
        reason = str(notes) if notes else "TODO (lead): explain why this target is missed."
        if "error" in data:
            reason = "the benchmark did not run (error below)."
        lines.append(f"- **{title}** — {names}: {reason}")
    for file, title, data in results:
        lines += ["", f"## {title}", "", f"`benchmarks/{file}`", ""]
        if "error" in data:
            lines += ["Did not run:", "", "```", str(data["error"]), "```"]
            continue
        lines += ["| figure | value |", "|---|---|"]
        for key, value in _flatten(data):
            lines.append(f"| {key} | {_cell(value)} |")
        notes = data.get("notes")
        if notes:
            lines += ["", str(notes)]
    return "\n".join(lines) + "\n"


def _met(met: object, no: str) -> str:
    return "n/a" if met is None else "yes" if met else no


def _missed(data: dict[str, object]) -> list[str]:
    targets = data.get("targets")
    if not isinstance(targets, dict):
        return ["(did not run)"] if "error" in data else []
    return [str(name) for name, ok in targets.items() if not ok]


def _flatten(data: object, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if not prefix and key in ("targets", "benchmark", "notes"):
                continue
            out += _flatten(value, f"{prefix}{key}.")
    elif isinstance(data, list):
        out.append((prefix.rstrip("."), json.dumps(data)[:120]))
    else:
        out.append((prefix.rstrip("."), data))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="benchmark files to run (default: all)")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite the report")
    parser.add_argument(
        "--quick", action="store_true", help="pass --quick to the benchmarks that support it"
    )
    args = parser.parse_args(argv)
    results: list[tuple[str, str, dict[str, object]]] = []
    for file, title, extra in BENCHMARKS:
        if args.only and file not in args.only:
            continue
        path = HERE / file
        if not path.exists():
            results.append((file, title, {"error": f"{file} does not exist yet"}))
            continue
        options = [*extra, "--quick"] if args.quick and supports_quick(path) else extra
        print(f"running {file} {' '.join(options)}...", flush=True)
        results.append((file, title, run_one(path, options)))
    print()
    print(f"{'benchmark':<34} {'figure':<38} {'value':>12} {'peer value':>12} {'ratio':>7}  met")
    for file, title, data in results:
        for r in rows_for(file, title, data):
            print(
                f"{title[:34]:<34} {str(r['figure'])[:38]:<38} {_cell(r['value'])[:12]:>12} "
                f"{_cell(r['peer_value'])[:12]:>12} {_cell(r['ratio'])[:7]:>7}  "
                f"{_met(r['met'], 'NO')}"
            )
    if not args.no_write:
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        report = render(results, when, machine(), quick=args.quick)
        REPORT.write_text(report, encoding="utf-8")
        print(f"\nwrote {REPORT.relative_to(ROOT)}")
    # Unmet targets are reported (table above and in the report), not treated as a crash.
    return 0


if __name__ == "__main__":
    sys.exit(main())
