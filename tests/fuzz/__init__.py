"""Property-based fuzz suite over the public heads, losses, functional twins and metrics (issue 19)."""
