"""stressor: a load and concurrency stress tester for asynchronous job APIs."""

__version__ = "0.1.0"
