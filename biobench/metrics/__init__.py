"""Evaluation metrics shared by the systems (verification now; compression and generation follow)."""
