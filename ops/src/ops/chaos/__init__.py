"""Fault injection against a platform of its own, checked against the truth (`ops chaos`)."""
