"""The export file's rows as typed records: bytes opened, lines split, values typed, the reader."""
