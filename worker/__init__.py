"""Celery workers: dedupe, order, coalesce, map and deliver to ChartMogul."""
