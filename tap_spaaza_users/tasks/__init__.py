"""Which Spaaza export task serves each window, across runs: the ledger, task list, tags, clock."""
