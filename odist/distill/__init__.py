"""The online distillation loop for one stream: schedule, loss, metrics, cost accounting."""
