"""mas package."""
