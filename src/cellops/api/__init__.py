"""The controller's HTTP API: versioned JSON under /api/v1, bearer tokens with a role,
a Server-Sent Events stream of events, and the push webhook, on one listener.

`create_app` (app.py) builds it from an `ApiContext`; each part is a router of its own
module (reads, writes, stream), so the dashboard and /metrics are more routers."""
