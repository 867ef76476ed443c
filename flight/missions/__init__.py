"""Missions built on the framework."""
