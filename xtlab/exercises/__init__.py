"""Auto-checkers for the labs' exercises: each returns a verdict and prints a helpful message."""
