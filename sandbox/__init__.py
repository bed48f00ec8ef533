"""An offline ChartMogul API sandbox that behaves like the real service."""
