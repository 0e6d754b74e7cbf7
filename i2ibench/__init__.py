"""i2ibench: one interface, one protocol, for multi-domain image-to-image translation."""

__version__ = "0.1.0"
