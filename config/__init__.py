"""Typed settings: the single source of truth for ports, services and images."""
