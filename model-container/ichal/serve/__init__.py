"""SageMaker hosting contract: GET /ping, POST /invocations on port 8080 (plus the SDK-shaped paths)."""
