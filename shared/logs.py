"""Logging set-up for entry points (the CLI, each actor's process).

Modules only ever call ``logging.getLogger(__name__)``; handlers are set here,
once per process. Lines carry ids, never the text of a communication.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=FORMAT)
    else:
        root.setLevel(level)
    # Chatty libraries: their per-request lines say nothing about our work.
    for name in ("botocore", "urllib3", "httpx", "httpcore", "werkzeug", "anthropic"):
        logging.getLogger(name).setLevel(logging.WARNING)
