"""The run phases and their transitions, declared as tables (`table.py`) and documented (`docs.py`)."""
