"""Running the real claude in a pty and recording what it shows: the launch path."""
