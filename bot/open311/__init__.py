"""Open311 GeoReport v2 at /open311/v2/ (JSON): discovery, services (the taxonomy), service requests
(read; POST with an api_key opens an order through the chat's intake)."""
