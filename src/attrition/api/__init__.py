"""The HTTP interface: FastAPI app factory, dependencies, schemas, routers, error mapping."""
