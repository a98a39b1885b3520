"""The admission webhook's logic (pure) and its serving certificate."""
