"""The stack a benchmark runs on: emulator, offline model, local Ray, fresh tables.

Each run provisions a fresh resource prefix, so the emulator's tables start
empty (moto slows down as tables grow, and the figures would drift from run to
run otherwise).
"""

from __future__ import annotations

import os
import platform
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from shared.aws.provision import provision
from shared.settings import Settings
from standins.aws_emulator import start_emulator
from standins.offline_model import start_model_server
from standins.process import ServerProcess, free_port


@dataclass
class BenchStack:
    settings: Settings
    emulator: ServerProcess
    model: ServerProcess

    def emulator_cpu_seconds(self) -> float:
        times = psutil.Process(self.emulator.process.pid).cpu_times()
        return float(times.user + times.system)

    def fresh(self, label: str, **overrides: object) -> Settings:
        """Settings with a new prefix and namespace, provisioned."""
        name = f"b{label}{uuid.uuid4().hex[:6]}"
        settings = self.settings.with_overrides(
            resource_prefix=name, ray_namespace=name, **overrides
        )
        provision(settings)
        return settings


def machine() -> dict[str, object]:
    import ray

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "ray": ray.__version__,
    }


@contextmanager
def bench_stack(
    log_dir: Path, ttft_ms: float, total_ms: float, jitter_ms: float
) -> Iterator[BenchStack]:
    import ray

    log_dir.mkdir(parents=True, exist_ok=True)
    emulator = start_emulator(port=free_port(), log_path=log_dir / "emulator.log")
    model = start_model_server(
        port=free_port(),
        log_path=log_dir / "model.log",
        ttft_ms=ttft_ms,
        total_ms=total_ms,
        jitter_ms=jitter_ms,
        seed=7,
    )
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        settings = Settings(
            aws_endpoint_url=emulator.url,
            model_base_url=model.url,
            sqs_wait_seconds=1,
            batch_window_seconds=3600,  # keep triggers in the table to read
        )
        yield BenchStack(settings, emulator, model)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        model.stop()
        emulator.stop()
        time.sleep(0.2)
