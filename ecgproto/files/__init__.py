"""Files: atomic writes, interruption, and paths kept inside their root."""
