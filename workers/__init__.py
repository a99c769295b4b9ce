"""Queue-driven workers: extract → plan → push.<connector>, thin actors around pure stages."""
