"""A run on disk: store, events, checkpoints, report."""
