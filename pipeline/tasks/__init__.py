"""Task adapters, one module per `task.type`, registered in `tasks.registry`."""
