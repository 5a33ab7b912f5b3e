"""A restarted Ray re-arms pending windows from DynamoDB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.aws.queues import receive_notifications
from shared.settings import Settings
from tests.integration.actors.test_alert_batch import TENANT, make_alert

ROOT = Path(__file__).resolve().parents[3]


def phase(settings: Settings, name: str, alert_id: str) -> str:
    env = {
        **os.environ,
        "WATCHWORD_AWS_ENDPOINT_URL": str(settings.aws_endpoint_url),
        "WATCHWORD_RESOURCE_PREFIX": settings.resource_prefix,
        "WATCHWORD_RAY_NAMESPACE": settings.ray_namespace,
        "WATCHWORD_ALERT_BATCH_SHARDS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.actors.restart_phase",
            name,
            TENANT,
            alert_id,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_window_armed_before_a_ray_restart_is_flushed_after_it(
    aws_provisioned: Settings,
) -> None:
    alert_id = make_alert(aws_provisioned)
    armed = phase(aws_provisioned, "arm", alert_id)
    assert "armed timers=1 sent=0" in armed
    assert receive_notifications(aws_provisioned) == []  # the timer died with Ray

    recovered = phase(aws_provisioned, "recover", alert_id)
    assert "recovered sent=1" in recovered
    [notification] = receive_notifications(aws_provisioned)
    assert [t.communication_id for t in notification.triggers] == ["email-restart"]
