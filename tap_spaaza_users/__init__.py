"""tap-spaaza-users: a Singer tap for Spaaza user exports, built with the Meltano Singer SDK."""
