"""CLI command modules. Each is imported lazily by ``hearkit.cli``; none imports torch at module level."""
