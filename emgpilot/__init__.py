"""emgpilot: fly a drone with your arm."""

__version__ = "0.1.0"
