"""Which Spaaza export task serves each window, across runs, and the wait for it to finish."""
