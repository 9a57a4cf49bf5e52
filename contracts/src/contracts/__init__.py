"""Event contracts of the training platform."""
