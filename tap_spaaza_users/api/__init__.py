"""How the tap talks to the Spaaza Services API: address, client, answers, retry waits, metrics."""
