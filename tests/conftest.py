"""Shared by every test folder: nothing here starts anything on import."""
