"""auditcorr: attribute S3 writes made inside Amazon AppStream 2.0 to the user and session behind them."""

__version__ = "0.1.0"
