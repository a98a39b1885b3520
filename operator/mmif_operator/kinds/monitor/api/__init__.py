"""The monitors' HTTP API and Atom feed (issue 13 point 4), served by the operator's deployment.

`paging.py` and `links.py` decide (pure), `feed.py` writes the Atom document (lxml), `access.py`
is the authorisation rule, `server.py` the aiohttp routes over the operator's client.
"""
