"""Salon's domain: rooms, presence, calls, chat and limits, with no I/O of its own."""
