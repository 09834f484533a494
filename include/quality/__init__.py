"""Data quality: Soda Core v4 contracts (``contracts/``) and the gate that enforces them (``gate``)."""
