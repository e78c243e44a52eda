"""Liquidity providers."""
