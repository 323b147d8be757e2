"""Which Spaaza export task serves each window, across runs: ledger, list, tags, clock, wait."""
