"""Helpers the tests share: running the tap, its output, a flaky proxy, spooled fetches, ports."""
