"""Pipeline: an ordered chain of CLAMS apps, and the Service-mode apps it keeps."""
