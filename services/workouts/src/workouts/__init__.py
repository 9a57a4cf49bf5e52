"""The workouts service."""
