"""Pipecat logs with loguru; here they join the service's logging (its format, its redaction)."""

from __future__ import annotations

import logging
from typing import Any

from loguru import logger


def route_pipecat_logs(level: str) -> None:
    """Send loguru's records (Pipecat's) to the stdlib logger of their module, at `level`+."""
    logger.remove()
    logger.add(_to_logging, level=level, format="{message}")


def _to_logging(message: Any) -> None:
    record = message.record
    level = logging.getLevelName(record["level"].name)
    number = level if isinstance(level, int) else record["level"].no
    logging.getLogger(record["name"] or "pipecat").log(number, record["message"])
