"""Recipes: whole jobs built from the layers below (demo, data synthesis)."""
