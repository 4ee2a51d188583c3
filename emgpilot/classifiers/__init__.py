"""Streaming detectors, the wrist network, gesture fusion and evaluation metrics."""
