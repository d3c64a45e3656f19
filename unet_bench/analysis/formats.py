"""The output formats of a comparison table (a light module: the CLI offers them without pandas)."""

FORMATS = ("text", "md", "csv", "latex")
