"""Deliveries from the bridge to the operator's systems (the call-end webhook)."""
