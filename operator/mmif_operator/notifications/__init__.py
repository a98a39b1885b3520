"""Run notifications: the outbox in a run's status (outbox.py, pure), what a delivery sends
(messages.py, pure: the CloudEvent, the email, the signature) and one attempt at sending it
(deliver.py: HTTP and SMTP). The kopf daemon that drives them is notifications/handler.py."""
