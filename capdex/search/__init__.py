"""The read path: natural-language queries in, ranked photos out."""
