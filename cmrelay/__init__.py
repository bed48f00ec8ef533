"""chartmogul-relay: Segment Identify/Group calls to ChartMogul, durably and in order."""

__version__ = "0.1.0"
