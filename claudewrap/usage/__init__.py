"""The usage core: the summing rule, the incremental state and its saved form, and reports."""
