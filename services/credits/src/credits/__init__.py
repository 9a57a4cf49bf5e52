"""The credits service."""
