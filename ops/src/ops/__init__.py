"""Operator tooling for the training platform."""
