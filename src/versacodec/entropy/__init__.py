"""Entropy coding: density models with differentiable likelihoods for training and exact
coding through constriction at inference.

Determinism: every probability the coder sees comes from integer tables stored with the
weights, selected by indices computed with exact fixed-point arithmetic (`fixed_point`), so
encoder and decoder agree bit for bit on any machine, thread count or batch size.
"""
