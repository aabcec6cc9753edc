"""Warm the bootstraps of recently active trainers (a bounded number per run)."""

from __future__ import annotations

from .sections import trainer_bootstrap


def register() -> None:
    """Register the trainer bootstrap warmer and verifier (from ``TrainersConfig.ready``)."""
    trainer_bootstrap.register_warmer()
    trainer_bootstrap.register_verifier()
