"""What the CLI and the admin API share: orgs, admin tokens, connections, mapping versions,
validation against the providers, and previews. Like `cli`, this is the top floor:
it may import connectors, mappings and extraction; nothing below imports it.
"""
