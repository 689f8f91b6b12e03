"""What is computed from a fitted mixture: residuals (and later tests and margins)."""
