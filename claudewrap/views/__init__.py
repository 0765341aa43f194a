"""What a person reads: the usage table, analysis, advice, 5-hour blocks, the monitor."""
