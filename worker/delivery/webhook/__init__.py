"""DELIVERY_MODE=webhook: ChartMogul's Segment webhook, with the ChartMogul (Actions) payloads."""
