"""Sample recordings shipped with emgpilot (see README.md in this folder)."""
