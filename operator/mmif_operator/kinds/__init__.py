"""One package per custom resource kind: its model (model.py), its planning (planning.py,
pure), the children it makes (children.py, pure) and its kopf handler (handler.py)."""
