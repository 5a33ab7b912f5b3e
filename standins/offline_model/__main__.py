"""Run the offline model: ``python -m standins.offline_model --port 4590``."""

from __future__ import annotations

import argparse
import logging

from standins.offline_model.config import ModelConfig
from standins.offline_model.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m standins.offline_model",
        description="A local stand-in for Anthropic's Messages API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4590)
    parser.add_argument(
        "--ttft-ms", type=float, default=0.0, help="time to first event"
    )
    parser.add_argument("--total-ms", type=float, default=0.0, help="time to the end")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform, +/-")
    parser.add_argument(
        "--cache-min-tokens",
        type=int,
        default=1024,
        help="shortest prefix the prompt cache keeps",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds jitter and faults")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = ModelConfig(
        ttft_ms=args.ttft_ms,
        total_ms=args.total_ms,
        jitter_ms=args.jitter_ms,
        cache_min_tokens=args.cache_min_tokens,
        seed=args.seed,
    )
    serve(args.host, args.port, config)


if __name__ == "__main__":
    main()
