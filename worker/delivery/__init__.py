"""Delivery to ChartMogul: the contract, HTTP plumbing, the shared limiter, one package per mode."""
