"""Models: the one door every request goes through (``ModelClient``), its transports (litellm, router,
direct, local), batching, the adaptive limiter, the response cache and prices."""
