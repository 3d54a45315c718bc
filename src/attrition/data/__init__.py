"""The TechNova extracts: their vocabulary, validation and loading into PostgreSQL."""
