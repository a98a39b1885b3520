"""Pure builders: names, labels, pod security, Job / Deployment / Service dicts (no API calls)."""
