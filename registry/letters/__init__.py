"""Postal letters: secrets (activation keys, password-reset codes) printed and mailed to an
establishment's address in the RCD, a channel of their own that no API reads."""
