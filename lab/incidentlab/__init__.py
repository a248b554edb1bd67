"""The incident-response lab: a local stand-in for the platform (databases, monitoring,
a two-region Kubernetes API, load balancers, notification sinks) with fault injection."""
