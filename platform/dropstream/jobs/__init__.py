"""Background work: the outbox, the queues (RQ or in-process), the runner, scheduler and worker."""
