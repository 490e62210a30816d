"""Fixtures that run the Confluence emulator over a real socket (filled in by the emulator work)."""
