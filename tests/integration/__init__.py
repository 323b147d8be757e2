"""Integration tests: the real `meltano` CLI and real targets against the sandbox."""
