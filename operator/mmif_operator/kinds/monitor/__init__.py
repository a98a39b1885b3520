"""The Monitor and HealthReport custom resources: apps and pipelines tested on a schedule."""
