"""How the tap talks to the Spaaza Services API: its address, the client, answers, retry waits."""
