"""Terminal bytes to usage events: the streaming scanner and the usage patterns."""
