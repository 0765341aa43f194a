"""Claude Code's own accounts of its usage, and usage found after the fact."""
