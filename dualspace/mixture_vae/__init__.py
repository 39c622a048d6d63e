"""Mixture of VAEs: K channels, each with its own low-dimensional latent; the class lives in which channel is used."""
