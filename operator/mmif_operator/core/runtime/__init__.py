"""The loop runtime the kinds' handlers share: the daemon skeleton (loop.py), applying a
plan (apply.py), wake-ups, the Job index, pod-start watches, background deletes, startup."""
