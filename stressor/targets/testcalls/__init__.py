"""The test-calls API as a target: its answers, failures, requests, lists, reconciliation and the target itself."""

from stressor.targets.testcalls.target import TestCallsTarget

__all__ = ["TestCallsTarget"]
