"""Which Spaaza export task serves each window, across runs: the ledger, its tags, its clock."""
