"""Orders: import, validation and mapping, holds, forwarding, cancellation, the timeline."""
