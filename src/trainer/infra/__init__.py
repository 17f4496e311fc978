"""Infrastructure every command shares: atomic writes, locks, progress, the distributed setup, the
terminal's log lines, and how a command ends on a bug or a signal."""
