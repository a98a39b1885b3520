"""The shared core every kind builds on: the schema base (model.py, cel.py, crdgen.py,
refdocs.py), status helpers, item states, names, labels, pod security, owned children,
pod-start checks, the Kubernetes helpers (kube/) and the loop runtime (runtime/)."""
