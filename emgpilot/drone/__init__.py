"""Drone commands, mapper, safety supervisor and backends (simulator, Olympe)."""
