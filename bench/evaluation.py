"""Benchmark of the evaluation engine on the real data: ``make bench``.

Runs the real TenantActor, evaluator pool, emulator and offline model (at a
realistic latency: 800 ms ± 300 ms in total, 300 ms to the first token), and
prints, then writes to ``bench/results/``:

1. billed input tokens per communication (cache writes at 1.25x, reads at
   0.1x) for Watchword's strategy (warm-up, then the rest read the cache),
   "all alerts at once" (each call writes the cache) and "no caching", for
   tenants with 1, 5 and 20 alerts, on transcripts (long) and emails (short);
2. evaluations per second against the ideal (concurrency cap / latency), with
   50 active tenants, and the memory of a TenantActor and of the whole cluster;
3. the end-to-end latency from SNS publish to the pending-alert write;
4. how much of the time the emulator spent (CPU seconds of its process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import ray
from rich.console import Console
from rich.table import Table

from actors.alert_batch import start_shards
from actors.directory import TenantDirectory
from bench.harness import BenchStack, bench_stack, machine
from ingest.publish import load_records, publish_communications
from ingest.supervisor import poller_stats, start_pollers, stop_pollers
from shared.aws.alert_store import AlertStore
from shared.aws.pending_store import PendingStore
from shared.models import (
    AlertDefinition,
    FieldType,
    StateField,
    StateSchema,
    parse_communication,
)
from shared.models.communications import Communication
from shared.settings import Settings

console = Console()
STRATEGIES = ("warm_up", "all_at_once", "no_cache")
# Phrases frequent in the data, so that many evaluations fire.
PHRASES = [
    "price",
    "contract",
    "meeting",
    "deal",
    "gas",
    "power",
    "account",
    "order",
    "customer",
    "budget",
    "legal",
    "trading",
    "market",
    "energy",
    "call",
    "report",
    "project",
    "design",
    "cost",
    "team",
]


def make_alerts(
    settings: Settings, tenant: str, count: int, stateful: int | None = None
) -> list[str]:
    """``count`` alerts, the first ``stateful`` (default: all) with a counter."""
    store = AlertStore(settings)
    stateful = count if stateful is None else stateful
    ids = []
    for i in range(count):
        phrase = PHRASES[i % len(PHRASES)]
        fields = (
            [StateField(name="mentions", type=FieldType.INTEGER)]
            if i < stateful
            else []
        )
        alert = store.create(
            tenant,
            AlertDefinition(
                name=f"mentions {phrase} #{i}",
                description=f"mentions of {phrase}",
                data_types=["call_transcript", "email", "salesforce"],
                instructions=f'Fire when the communication mentions "{phrase}".',
                state_schema=StateSchema(fields=fields),
            ),
        )
        ids.append(alert.alert_id)
    return ids


def stop_actors(settings: Settings) -> None:
    """End a scenario's named actors, so the next one measures only its own."""
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == settings.ray_namespace:
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]))


def as_tenant(record: dict[str, Any], tenant: str, suffix: str) -> Communication:
    # A distinct id per configuration gives a distinct prompt prefix, so one
    # configuration never reads another's cache entries.
    return parse_communication(
        {**record, "tenant": tenant, "id": f"{record['id']}-{suffix}"}
    )


async def run_tenant(
    directory: TenantDirectory, comms: list[Communication]
) -> list[float]:
    billed = []
    for comm in comms:  # in order, as one tenant's stream would arrive
        outcome = await directory.process(comm)
        billed.append(sum(r.usage.billed_input() for r in outcome.results))
    return billed


async def gather_all(jobs: list[Any]) -> list[Any]:
    return list(await asyncio.gather(*jobs))


def cost_by_strategy(
    stack: BenchStack, records: list[dict[str, Any]], quick: bool
) -> list[dict[str, Any]]:
    transcripts = sorted(
        (r for r in records if r["data_type"] == "call_transcript"),
        key=lambda r: -len(json.dumps(r)),
    )[: 2 if quick else 4]
    emails = [r for r in records if r["data_type"] == "email"][: 4 if quick else 10]
    rows = []
    for strategy in STRATEGIES:
        httpx.delete(f"{stack.settings.model_base_url}/_control/cache")
        settings = stack.fresh("c", evaluation_strategy=strategy)
        directory = TenantDirectory(settings)
        jobs = {}
        for n in (1, 5, 20):
            for kind, sample in (("transcript", transcripts), ("email", emails)):
                tenant = f"bench-{n}-{kind}"
                make_alerts(settings, tenant, n)
                comms = [as_tenant(r, tenant, f"{strategy}{n}") for r in sample]
                jobs[(n, kind)] = run_tenant(directory, comms)

        started = time.monotonic()
        results = asyncio.run(gather_all(list(jobs.values())))
        for (n, kind), billed in zip(jobs, results, strict=True):
            rows.append(
                {
                    "strategy": strategy,
                    "alerts": n,
                    "data_type": kind,
                    "communications": len(billed),
                    "billed_input_tokens_per_communication": round(
                        statistics.mean(billed)
                    ),
                }
            )
        console.print(f"  {strategy}: {time.monotonic() - started:.0f}s")
        stop_actors(settings)
    return rows


def throughput_and_memory(
    stack: BenchStack, records: list[dict[str, Any]], quick: bool
) -> dict[str, Any]:
    tenants = 10 if quick else 50
    alerts_each, emails_each = 4, 2
    cap = 32
    settings = stack.fresh("t", llm_max_concurrency=cap, evaluator_pool_size=2)
    emails = [r for r in records if r["data_type"] == "email"]
    directory = TenantDirectory(settings)
    jobs = []
    for t in range(tenants):
        tenant = f"load-{t}"
        make_alerts(settings, tenant, alerts_each)
        sample = emails[t * emails_each : (t + 1) * emails_each]
        jobs.append(run_tenant(directory, [as_tenant(r, tenant, "t") for r in sample]))

    # Create every tenant actor first, so the timing below is evaluation only.
    for t in range(tenants):
        ray.get(directory.handle(f"load-{t}").stats.remote())
    cpu_before = stack.emulator_cpu_seconds()

    started = time.monotonic()
    asyncio.run(gather_all(jobs))
    wall = time.monotonic() - started
    evaluations = tenants * alerts_each * emails_each
    config = httpx.get(f"{settings.model_base_url}/_control/config").json()
    latency = config.get("total_ms", 800) / 1000
    memory = actor_memory(directory, [f"load-{t}" for t in range(tenants)])
    stop_actors(settings)
    return {
        "tenants": tenants,
        "evaluations": evaluations,
        "seconds": round(wall, 2),
        "evaluations_per_second": round(evaluations / wall, 1),
        "ideal_per_second": round(cap / latency, 1),
        "concurrency_cap": cap,
        "emulator_cpu_seconds": round(stack.emulator_cpu_seconds() - cpu_before, 2),
        **memory,
    }


def actor_memory(directory: TenantDirectory, tenants: list[str]) -> dict[str, Any]:
    pids = ray.get([directory.handle(t).stats.remote() for t in tenants])
    per_actor = []
    for stats in pids:
        try:
            info = psutil.Process(stats["pid"]).memory_full_info()
            per_actor.append((info.rss, info.pss))
        except psutil.Error:
            continue
    cluster_rss = cluster_pss = 0
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "ray" in cmd and "bench.evaluation" not in cmd:
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            cluster_rss += info.rss
            cluster_pss += info.pss
    mib = 2**20
    return {
        "active_tenant_actors": len(per_actor),
        "tenant_actor_rss_mib": round(statistics.mean(r for r, _ in per_actor) / mib),
        "tenant_actor_pss_mib": round(statistics.mean(p for _, p in per_actor) / mib),
        "cluster_rss_mib": round(cluster_rss / mib),
        "cluster_pss_mib": round(cluster_pss / mib),
    }


def end_to_end_latency(
    stack: BenchStack, records: list[dict[str, Any]], quick: bool
) -> dict[str, Any]:
    settings = stack.fresh(
        "e", pollers_per_queue=1, alert_batch_shards=2, batch_window_seconds=3600
    )
    emails = [r for r in records if r["data_type"] == "email"][: 60 if quick else 200]
    tenants = sorted({r["tenant"] for r in emails})
    stateful_ids: set[str] = set()
    for tenant in tenants:
        ids = make_alerts(settings, tenant, 3, stateful=1)
        stateful_ids.add(ids[0])
    asyncio.run(start_shards(settings))
    start_pollers(settings)
    cpu_before = stack.emulator_cpu_seconds()
    published_at: dict[str, datetime] = {}
    rate = 3.0  # per second, about one per tenant: latency rather than backlog
    started = time.monotonic()
    for i in range(0, len(emails), 5):
        batch = emails[i : i + 5]
        now = datetime.now(UTC)
        publish_communications(settings, batch)
        for r in batch:
            published_at[r["id"]] = now
        time.sleep(max(0.0, started + (i + 5) / rate - time.monotonic()))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stats = poller_stats(settings)
        if stats["processed"] + stats["dead_lettered"] >= len(emails):
            break
        time.sleep(0.5)
    wall = time.monotonic() - started
    stop_pollers(settings, drain_seconds=1.0)

    stop_actors(settings)

    pending = PendingStore(settings)
    latencies: dict[str, list[float]] = {"stateful": [], "stateless": []}
    for tenant in tenants:
        for alert in AlertStore(settings).all_for_tenant(tenant):
            kind = "stateful" if alert.alert_id in stateful_ids else "stateless"
            for _, trigger in pending.triggers(tenant, alert.alert_id):
                sent = published_at[trigger.communication_id]
                latencies[kind].append((trigger.received_at - sent).total_seconds())

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    every = latencies["stateful"] + latencies["stateless"]
    return {
        "communications": len(emails),
        "pending_writes": len(every),
        "publish_rate_per_second": rate,
        "p50_seconds": pct(every, 0.50),
        "p95_seconds": pct(every, 0.95),
        "p99_seconds": pct(every, 0.99),
        "stateful_p50_seconds": pct(latencies["stateful"], 0.50),
        "stateful_p95_seconds": pct(latencies["stateful"], 0.95),
        "stateless_p50_seconds": pct(latencies["stateless"], 0.50),
        "stateless_p95_seconds": pct(latencies["stateless"], 0.95),
        "emulator_cpu_seconds": round(stack.emulator_cpu_seconds() - cpu_before, 2),
        "wall_seconds": round(wall, 1),
    }


def report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n")
    cost: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for row in results["cost"]:
        key = (row["alerts"], row["data_type"])
        cost[key][row["strategy"]] = row["billed_input_tokens_per_communication"]
    lines = [
        "# Evaluation benchmark",
        "",
        f"Run {results['run_at']} on {results['machine']['cores']} cores,"
        f" {results['machine']['memory_gib']} GiB, Python"
        f" {results['machine']['python']}, Ray {results['machine']['ray']}."
        f" Offline model latency: {results['model_latency']}. Fresh emulator"
        " tables for every scenario. Produced by `make bench`.",
        "",
        "## Billed input tokens per communication",
        "",
        "| alerts | data | warm-up (Watchword) | all at once | no caching"
        " | saving vs no caching |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for (n, kind), by in sorted(cost.items()):
        saving = 1 - by["warm_up"] / by["no_cache"] if by.get("no_cache") else 0
        lines.append(
            f"| {n} | {kind} | {by['warm_up']:,} | {by['all_at_once']:,} |"
            f" {by['no_cache']:,} | {saving:.0%} |"
        )
    t, e = results["throughput"], results["latency"]
    lines += [
        "",
        "## Throughput and memory",
        "",
        f"- {t['evaluations']} evaluations for {t['tenants']} active tenants in"
        f" {t['seconds']} s: **{t['evaluations_per_second']} evaluations/s**"
        f" against an ideal of {t['ideal_per_second']}/s (cap {t['concurrency_cap']}"
        " ÷ latency).",
        f"- TenantActor: {t['tenant_actor_rss_mib']} MiB RSS,"
        f" {t['tenant_actor_pss_mib']} MiB PSS each; the whole Ray cluster with"
        f" {t['active_tenant_actors']} tenant actors: {t['cluster_rss_mib']} MiB"
        f" RSS, {t['cluster_pss_mib']} MiB PSS.",
        f"- Emulator CPU during it: {t['emulator_cpu_seconds']} s of {t['seconds']} s.",
        "",
        "## End to end: SNS publish to pending-alert write",
        "",
        f"{e['communications']} emails of three tenants published at"
        f" {e['publish_rate_per_second']}/s through SNS, SQS, the pollers and the"
        f" tenant actors, each tenant with one alert that keeps a counter and two"
        f" without state; {e['pending_writes']} pending-alert writes. An alert"
        " with state evaluates one communication at a time (in arrival order),"
        " so its latency grows once a tenant's rate nears 1 / model latency.",
        "",
        "| alerts | p50 | p95 | p99 |",
        "| --- | ---: | ---: | ---: |",
        f"| all | {e['p50_seconds']} s | {e['p95_seconds']} s | {e['p99_seconds']} s |",
        f"| with state (one at a time per alert) | {e['stateful_p50_seconds']} s"
        f" | {e['stateful_p95_seconds']} s | |",
        f"| without state (side by side) | {e['stateless_p50_seconds']} s"
        f" | {e['stateless_p95_seconds']} s | |",
        "",
        f"Emulator CPU: {e['emulator_cpu_seconds']} s of {e['wall_seconds']} s"
        " (moto serves every SQS, SNS and DynamoDB call; its transactions slow"
        " as tables grow, so each scenario starts with fresh tables).",
    ]
    (out / "evaluation.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    args = parser.parse_args()

    records = load_records(args.data)
    latency = {"ttft_ms": 300.0, "total_ms": 800.0, "jitter_ms": 300.0}
    results: dict[str, Any] = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "model_latency": "300 ms to first token, 800 ms ± 300 ms in total",
        "quick": args.quick,
    }
    with bench_stack(Path("demo-out/bench-logs"), **latency) as stack:
        console.rule("cost per communication by strategy")
        results["cost"] = cost_by_strategy(stack, records, args.quick)
        console.rule("throughput and memory")
        results["throughput"] = throughput_and_memory(stack, records, args.quick)
        console.rule("end-to-end latency")
        results["latency"] = end_to_end_latency(stack, records, args.quick)
    report(results, args.out)

    table = Table(title="billed input tokens per communication")
    for column in ("alerts", "data", *STRATEGIES):
        table.add_column(column, justify="right")
    by: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for row in results["cost"]:
        by[(row["alerts"], row["data_type"])][row["strategy"]] = row[
            "billed_input_tokens_per_communication"
        ]
    for (n, kind), values in sorted(by.items()):
        table.add_row(str(n), kind, *(f"{values[s]:,}" for s in STRATEGIES))
    console.print(table)
    console.print(
        json.dumps({k: results[k] for k in ("throughput", "latency")}, indent=2)
    )
    console.print(f"written to {args.out}/evaluation.json and evaluation.md")


if __name__ == "__main__":
    main()
