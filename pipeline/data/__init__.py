"""Data: reading sources into named splits (`sources`) and padding encoded examples into batches (`collate`)."""
