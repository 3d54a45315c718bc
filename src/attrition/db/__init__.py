"""PostgreSQL: schema (SQLAlchemy models), migrations, embedded server, sessions, repositories."""
