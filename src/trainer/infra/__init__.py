"""Infrastructure every command shares: atomic writes, locks, progress, the distributed setup."""
