"""The attrition model: feature engineering, training and evaluation, serving, persistence.

``features`` is the one feature engineering shared by training and serving; ``training``
compares candidates under repeated cross-validation and fits the chosen one; ``compiled``
turns the fitted linear pipeline into a numpy dot product for serving and exact
explanations; ``artifact`` persists pipelines safely (checksum + trusted types); ``report``
draws the figures and writes the French model card.
"""
