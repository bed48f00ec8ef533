"""DELIVERY_MODE=api: ChartMogul's REST API."""
