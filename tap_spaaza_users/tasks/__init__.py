"""Which export task serves each window, across runs: ledger, sweep, list, tags, clock, wait."""
