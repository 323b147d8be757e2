"""Helpers the tests share: running the tap, reading its output, a flaky proxy, spooled fetches."""
