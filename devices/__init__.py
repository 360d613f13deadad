"""Device profiles shipped with hearkit (``devices/<name>/profile.toml``), read by ``hearkit.devices``.

This folder is installed as ``hearkit.devices_data`` so an installed wheel has
the profiles, not only a source checkout (docs/design.md §2). It holds data only.
"""
