"""The export file's rows as typed records: lines split, values typed, the reader."""
