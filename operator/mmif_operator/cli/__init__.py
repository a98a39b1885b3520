"""`kubectl mmif`: the kubectl plugin (console script `kubectl-mmif`). One module per command group
(`runs`: run, status, watch, wait, review, cancel; `results`: results; `logs`: logs), over the
shared Kubernetes access (`kube`, the user's own kubeconfig and identity), the reader pod
(`reader`), the pure rendering of a run (`render`) and its live display (`live`)."""
