"""mmif-runner: the program that runs inside step pods (see docs/design.md).

It talks only to the shared volume and over HTTP to a CLAMS app, never to the Kubernetes API.
`env`, `exitcodes` and `paths` import nothing heavy, so the operator can import them to build
Jobs and report paths; the other modules need mmif-python.
"""
