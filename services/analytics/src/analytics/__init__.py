"""The analytics service."""
