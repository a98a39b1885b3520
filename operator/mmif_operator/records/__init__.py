"""Records: published, immutable copies of a reviewed run's final MMIF with their lineage.

store.py    the record store on its own volume: content-addressed by sha256, never overwritten
lineage.py  the lineage document of a record (pure), and its JSON Schema (lineage.schema.json)
search.py   listing and searching the store's index (by input, app, legal tag, run, time)
"""
