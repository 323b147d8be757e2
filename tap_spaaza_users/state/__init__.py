"""The users stream's state: every key it reads and writes, and the rules that move them."""
