"""The journal: the record, where files live, appending, reading and following."""
