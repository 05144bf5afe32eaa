"""Pure functions that run each lab's experiments and return plain data (no widgets, no plots)."""
