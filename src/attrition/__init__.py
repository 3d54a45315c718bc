"""Futurisys attrition service: predicts which employees are likely to leave."""

__version__ = "0.1.0"
