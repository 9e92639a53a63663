"""Targets: one module per kind of API stressor drives, behind the protocol in ``base``."""
