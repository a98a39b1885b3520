"""Run phases and their transitions: the tables (`table.py`) and their docs (`docs.py`)."""
