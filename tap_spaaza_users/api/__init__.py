"""How the tap talks to the Spaaza Services API: the client, its answers, its retry waits."""
