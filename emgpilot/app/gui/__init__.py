"""The PyQt6 + pyqtgraph desktop GUI (Qt is imported only under ``emgpilot.app``)."""
