"""What every service shares: interceptors (auth, validation, errors), errors and reasons, page
tokens, handler wrapping, health, telemetry."""
