"""Command line and desktop GUI. The only package allowed to import Qt."""
