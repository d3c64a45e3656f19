"""The output formats of a comparison table, and what it can compare across (a light module: the CLI offers
them without pandas)."""

FORMATS = ("text", "md", "csv", "latex")
# What a row is compared across: variants (the baseline names a variant, or a results directory), or
# runtimes (the baseline names a runtime; each row beside the same variant under it).
BY = ("variant", "runtime")
