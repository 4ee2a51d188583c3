"""Streams, devices, causal filters, the pipeline, recording and replay. No Qt here."""
